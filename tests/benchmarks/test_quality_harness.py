"""The quality benchmark's bookkeeping: real sweeps on tiny blobs, no cached figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from benchmarks.quality.collect import candidate_table, references
from benchmarks.quality.run import _lodo, _variant, lodo_summary, table1


def _meta(name: str, centers: int, n: int = 150) -> dict:
    X, labels = make_blobs(n_samples=n, centers=centers, cluster_std=0.4, random_state=0)
    X = X.astype(np.float32)
    new, seconds, _ = candidate_table(X, labels)
    return {
        "name": name,
        "shape": "blobs",
        "rows": n,
        "true_k": centers,
        "seconds_new": seconds,
        "new": new,
        "today": new,
        "refs": references(X, labels, str(new["metric"].iloc[0]), centers),
    }


@pytest.fixture(scope="module")
def metas() -> list[dict]:
    return [_meta("three", 3), _meta("forty", 40)]


def test_table1_says_when_the_true_k_lies_outside_the_default_grid(metas: list[dict]) -> None:
    t = table1(metas).set_index("set")
    k_max = int(metas[1]["new"]["k_max"].iloc[0])
    assert k_max < 40
    assert t.loc["forty", "K"] == f"40 (k_max {k_max})"
    assert t.loc["forty", "met"] in ("yes", "NO: K off grid")
    # On the grid a plain verdict, and the best candidate bounds what any rule could reach.
    assert t.loc["three", "K"] == 3
    assert t.loc["three", "met"] in ("yes", "NO")
    assert (t["best on grid ARI"] >= t["new ARI"] - 1e-12).all()
    assert t.loc["three", "new ARI"] > 0.9


def test_lodo_chooses_each_value_on_the_other_sets_only() -> None:
    # "b" is best on every set but "c"; held out, "c" must still get "b" (chosen on the others).
    ari = {"a": {"s1": 0.5, "s2": 0.5, "c": 0.9}, "b": {"s1": 0.8, "s2": 0.7, "c": 0.1}}
    rows = _lodo(["s1", "s2", "c"], ["a", "b"], "a", lambda n, v: ari[v][n], lambda n: -1.0)
    by_set = {r["held out"]: r for r in rows}
    assert by_set["c"]["chosen on others"] == "b"
    assert by_set["c"]["held-out ARI"] == pytest.approx(0.1)
    # Held out s1, "a" averages 0.7 on s2 and c against 0.4 for "b".
    assert by_set["s1"]["chosen on others"] == "a"
    summary = lodo_summary(pd.DataFrame([{"constant": "x", **r} for r in rows])).iloc[0]
    assert summary["sets"] == 3
    assert "c (b: 0.100 vs 0.900)" in summary["folds where the choice moved"]


def test_a_variant_is_read_with_the_other_constants_at_their_defaults() -> None:
    v = {
        "cw=0.2|ts=block|tails=2.0": 0.1,
        "cw=1.0|ts=block|tails=2.0": 0.2,
        "cw=1.0|ts=0.75|tails=2.0": 0.3,
    }
    assert _variant(v, "categorical_weight", 1.0, {}) == pytest.approx(0.2)
    assert _variant(v, "text_share", 0.75, {"categorical_weight": "1.0"}) == pytest.approx(0.3)
    assert np.isnan(_variant(v, "text_share", 0.25, {"categorical_weight": "1.0"}))


def test_constants_over_seeds_score_every_seed_of_the_set_left_out(metas: list[dict]) -> None:
    from benchmarks.quality.seeds import constants_over_seeds

    # Two copies of one set, each "under three seeds": every fold then chooses on a set that
    # scores exactly like the one left out, so both folds agree and cannot lose to the default.
    table = metas[0]["new"]
    tables = {"a": [table] * 3, "b": [table] * 3}
    t = constants_over_seeds(tables, {"a": 2.0, "b": 2.0}).set_index("constant")
    assert set(t.index) >= {"min_size", "min_strength", "silhouette_ratio"}
    assert (t["held-out targets met"] == "0/6").all()  # an ARI of 2 is out of reach
    assert t["chosen on others (folds)"].str.fullmatch(r"\S+ x2").all()
    assert (t["held-out mean ARI"] >= t["default's mean ARI"] - 1e-12).all()
    # Reachable targets count every seed of the set left out.
    easy = constants_over_seeds(tables, {"a": -1.0, "b": -1.0})
    assert (easy["held-out targets met"] == "6/6").all()


def test_validation_sets_are_new_and_never_the_held_out_data(monkeypatch) -> None:
    from benchmarks.quality import datasets

    asked: list[tuple[str, str]] = []

    class Asked(Exception):
        pass

    def record(package: str, item: str) -> pd.DataFrame:
        asked.append((package, item))
        raise Asked

    monkeypatch.setattr(datasets, "_rdata", record)
    for load in datasets.VALIDATION.values():
        with pytest.raises(Asked):
            load()
    assert not set(datasets.VALIDATION) & set(datasets.LOADERS)
    assert len(asked) == len(datasets.VALIDATION)
    assert not [a for a in asked if a[0] in ("MASS", "ggplot2") or a[1] == "airquality"]


def test_the_k2_variants_of_largest_k_on_a_tiny_table() -> None:
    """The rule stops at k=2: the variant revisits it, "always" takes the largest replicating k."""
    from benchmarks.quality.largest_k import edge_then_largest, largest_k

    rows = [  # algorithm, k, silhouette, evidence, prediction strength
        ("kmeans", 2, 0.512, -0.183, 0.987),
        ("agglomerative", 3, 0.372, -0.330, 0.876),
        ("kmeans", 3, 0.374, -0.319, 0.714),
        ("agglomerative", 4, 0.368, -0.483, 0.686),
        ("agglomerative", 5, 0.30, -0.9, 0.95),  # replicates, but under 70% of the best silhouette
    ]
    table = pd.DataFrame(
        rows, columns=["algorithm", "k", "silhouette", "evidence", "prediction_strength"]
    ).assign(stability=0.95, noise_share=0.0, min_share=0.2, evidence_share=0.9, k_max=10, ari=0.0)
    assert table.loc[_rule_index(table), "k"] == 2
    assert table.loc[edge_then_largest(table, 0.8, "silhouette"), "k"] == 3
    assert table.loc[edge_then_largest(table, 0.9, "silhouette"), "k"] == 2  # nothing finer
    assert table.loc[largest_k(table, 0.8, "silhouette"), "k"] == 3


def _rule_index(table: pd.DataFrame) -> int:
    from benchmarks.quality.run import new_rule

    return new_rule(table)
