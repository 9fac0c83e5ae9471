"""Progress events: stages report, listeners hear them, a broken listener breaks nothing."""

from __future__ import annotations

from sklearn.datasets import make_blobs

from clusterflow.progress import listening, report
from clusterflow.sweep import ClusterSweep


def test_listeners_hear_reports_only_inside_the_block():
    heard = []
    report("read", 1, 2, "rows")  # nobody listens: nothing happens
    with listening(heard.append):
        report("read", 2, 2, "rows")
    report("read", 3, 3, "rows")
    assert [(e.stage, e.done, e.total, e.unit) for e in heard] == [("read", 2, 2, "rows")]


def test_a_broken_listener_does_not_break_the_stage():
    def broken(_event):
        raise RuntimeError("display gone")

    with listening(broken):
        report("embed", 1, 10, "texts")


def test_the_sweep_reports_each_candidate():
    X, _ = make_blobs(n_samples=90, centers=3, random_state=0)
    heard = []
    with listening(heard.append):
        sweep = ClusterSweep(
            k_min=2, k_max=4, algorithms=["kmeans", "gmm"], stability_resamples=0
        ).fit(X)
    counts = [e.done for e in heard if e.stage == "sweep"]
    assert counts == list(range(1, len(sweep.results_) + 1))
    assert {e.total for e in heard} == {len(sweep.results_)} == {6}
