"""Evidence of a labeling (the gate's score) and the selection rule as a pure function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from clusterflow.cluster.evidence import labeling_score, prediction_strength
from clusterflow.cluster.selection import Selection, SelectionParams, select
from clusterflow.errors import NoViableClustering
from clusterflow.features import FeatureBuilder
from tests.conftest import shared

MEASUREMENTS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def test_labeling_score_prefers_the_true_grouping_on_blobs() -> None:
    X, y = make_blobs(n_samples=300, centers=3, cluster_std=0.7, random_state=0)
    over = KMeans(n_clusters=8, n_init=2, random_state=0).fit_predict(X)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(y)
    truth = labeling_score(X, y)
    assert truth > labeling_score(X, over)
    assert truth > labeling_score(X, shuffled)
    # Noise rows (-1) are one more group, not an error.
    noisy = y.copy()
    noisy[:10] = -1
    assert np.isfinite(labeling_score(X, noisy))


def test_labeling_score_ranks_penguins_k3_above_k9_on_held_out_rows() -> None:
    """The gate's case: silhouette cannot separate k=3 from k=9 (0.400 vs 0.398); this can."""
    df = pd.read_csv(shared("penguins.csv")).drop(columns=["species", "year"])
    df = df.dropna().reset_index(drop=True)
    rng = np.random.default_rng(0)
    held = np.zeros(len(df), dtype=bool)
    held[rng.choice(len(df), 52, replace=False)] = True  # ~15 % of the 333 complete rows
    builder = FeatureBuilder(numeric_columns=MEASUREMENTS, categorical_columns=["island", "sex"])
    X_train = builder.fit_transform(df[~held])
    X_held = builder.transform(df[held])
    scores, sils = {}, {}  # silhouette kept for the failure message only
    for k in (3, 9):
        km = KMeans(n_clusters=k, n_init=4, random_state=0).fit(X_train)
        labels = km.predict(X_held)
        scores[k] = labeling_score(X_held, labels)
        sils[k] = silhouette_score(X_held, labels)
    assert held.sum() >= 50
    assert scores[3] > scores[9] + 0.5, (scores, sils)


def test_prediction_strength() -> None:
    a = np.array([0, 0, 0, 1, 1, 1])
    assert prediction_strength(a, a) == 1.0
    assert prediction_strength(a, np.array([5, 5, 5, 7, 7, 7])) == 1.0
    # The second cluster is split 2+1: one of its three pairs survives.
    assert prediction_strength(a, np.array([0, 0, 0, 1, 1, 2])) == pytest.approx(1 / 3)
    assert prediction_strength(np.array([-1, -1]), np.array([0, 1])) == 0.0


def _table(rows: list[tuple]) -> pd.DataFrame:
    cols = ["algorithm", "k", "silhouette", "evidence", "stability", "noise_share", "min_share"]
    return pd.DataFrame(rows, columns=cols)


def test_select_evidence_proposes_silhouette_guards() -> None:
    table = _table(
        [
            ("kmeans", 2, 0.50, -1.0, 1.0, 0.0, 0.4),
            ("kmeans", 3, 0.45, -0.8, 0.9, 0.0, 0.2),
            ("kmeans", 4, 0.40, -0.9, 0.9, 0.0, 0.2),
            ("gmm", 5, 0.10, -0.5, 0.9, 0.0, 0.1),  # most evidence, poor geometry
        ]
    )
    sel = select(table, k_min=2, k_max=5, params=SelectionParams(silhouette_ratio=0.8))
    assert isinstance(sel, Selection)
    assert (sel.chosen.algorithm, sel.chosen.k) == ("kmeans", 3)
    assert "gmm k=5 had more evidence" in sel.rule
    assert sel.coarser.k == 2 and sel.finer.k == 4
    assert [r["role"] for r in sel.runner_ups()] == ["coarser", "finer"]
    with pytest.raises(AttributeError):
        sel.chosen.k = 9  # frozen


def test_a_finer_grouping_that_fails_a_check_is_still_named_with_why() -> None:
    # Only k=2 reproduces on refits (prediction strength >= 0.85), so no finer candidate is
    # viable; the finer runner-up is the nearest miss: fewest failed checks, then the highest
    # prediction strength (not the most evidence: k=6 reproduces far worse).
    table = _table(
        [
            ("kmeans", 2, 0.50, 1.0, 1.0, 0.0, 0.4),
            ("kmeans", 5, 0.45, 3.0, 0.9, 0.0, 0.1),
            ("kmeans", 6, 0.45, 3.5, 0.9, 0.0, 0.1),
            ("kmeans", 7, 0.45, 3.9, 0.3, 0.0, 0.1),  # unstable too
        ]
    ).assign(prediction_strength=[0.99, 0.84, 0.40, 0.10])
    sel = select(table, k_min=2, k_max=7)
    assert sel.chosen.k == 2 and sel.coarser is None
    assert sel.finer.k == 5
    assert sel.finer.caveat == "not chosen: prediction strength 0.840 under 0.85"
    assert "; not chosen: prediction strength 0.840 under 0.85)" in sel.finer.describe()
    assert sel.runner_ups() == [
        {
            "role": "finer",
            "algorithm": "kmeans",
            "k": 5,
            "evidence": 3.0,
            "silhouette": 0.45,
            "stability": 0.9,
            "caveat": "not chosen: prediction strength 0.840 under 0.85",
        }
    ]
    # A viable runner-up carries no caveat; one failing several checks names each.
    relaxed = select(table, k_min=2, k_max=7, params=SelectionParams(min_strength=0.3))
    assert relaxed.chosen.k == 6
    assert relaxed.coarser.k == 5 and relaxed.runner_ups()[0]["caveat"] is None
    assert relaxed.finer.caveat == (
        "not chosen: stability 0.300 under 0.5; prediction strength 0.100 under 0.3"
    )


def test_a_nearest_miss_names_only_the_checks_in_force() -> None:
    # The silhouette proposes (text-like share): prediction strength is no check there, and
    # every candidate is unstable, so stability is dropped and no caveat may name it. The
    # coarser side's miss fails the size check only; a NaN smallest share is said unmeasured.
    table = _table(
        [
            ("kmeans", 2, 0.20, 1.0, 0.2, 0.0, 0.01),  # a 2% of the mean size cluster
            ("kmeans", 3, 0.30, 1.0, 0.3, 0.0, 0.30),
            ("kmeans", 4, 0.25, 1.0, 0.2, 0.0, float("nan")),
        ]
    ).assign(prediction_strength=[0.1, 0.1, 0.1], evidence_share=0.3)
    sel = select(table, k_min=2, k_max=4)
    assert sel.chosen.k == 3 and "no candidate reached stability 0.5" in sel.notes
    assert sel.coarser.caveat == (
        "not chosen: smallest cluster 2.0% of the mean cluster size, under 10%"
    )
    assert sel.finer.caveat == "not chosen: smallest cluster unmeasured"


def test_select_drops_tiny_clusters_and_flags_the_edge() -> None:
    table = _table(
        [
            ("kmeans", 2, 0.40, -1.0, 1.0, 0.0, 0.4),
            ("kmeans", 3, 0.60, -0.1, 1.0, 0.0, 0.002),  # 0.2 % of the rows: 0.6% of the mean size
        ]
    )
    sel = select(table, k_min=2, k_max=3, params=SelectionParams(min_size=0.1))
    assert sel.chosen.k == 2
    assert sel.at_edge and any("bottom of the range" in n for n in sel.notes)
    pinned = select(table, k_min=3, k_max=3, pinned=3, params=SelectionParams(min_size=0.1))
    assert pinned.chosen.k == 3 and "pinned" in pinned.rule
    assert any("under 10% of the mean cluster size" in n for n in pinned.notes)


def test_select_raises_without_viable_candidates() -> None:
    table = _table([("hdbscan", 2, 0.3, -1.0, 1.0, 0.5, 0.3)])
    with pytest.raises(NoViableClustering, match="no viable clustering"):
        select(table, k_min=2, k_max=5)


def test_reducer_on_fewer_rows_than_dimensions():
    # found by the 200-case fuzz: 12 rows with 20 one-hot-like columns asked for 16 components
    from clusterflow.cluster.evidence import Reducer, labeling_score

    X = np.random.default_rng(0).normal(size=(12, 20))
    reducer = Reducer(X)
    assert reducer.transform(X).shape == (12, 12)
    assert np.isfinite(labeling_score(X, np.repeat([0, 1], 6)))


def test_held_out_likelihood_prefers_the_true_k_without_a_penalty():
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    from clusterflow.cluster.evidence import heldout_loglik

    X, _ = make_blobs(n_samples=500, centers=3, n_features=4, random_state=0)
    fit, held = X[:400], X[400:]
    score = {}
    for k in (2, 3, 6, 9):
        km = KMeans(n_clusters=k, n_init=4, random_state=0).fit(fit)
        score[k] = heldout_loglik(fit, km.labels_, held, km.predict(held)).mean()
    assert max(score, key=score.get) == 3


def test_a_held_out_cluster_the_fitted_rows_do_not_support_gets_no_credit():
    from clusterflow.cluster.evidence import heldout_loglik

    rng = np.random.default_rng(0)
    fit = rng.normal(size=(100, 2))
    held = rng.normal(size=(10, 2))
    one = heldout_loglik(fit, np.zeros(100, dtype=int), held, np.zeros(10, dtype=int))
    # label 7 has a single fitted row: scored under all rows' Gaussian with the share of one row
    lone = np.r_[np.zeros(99, dtype=int), 7]
    unsupported = heldout_loglik(fit, lone, held, np.full(10, 7))
    assert np.all(unsupported < one)
    np.testing.assert_allclose(one - unsupported, np.log(100) + (one - one), atol=0.05)
