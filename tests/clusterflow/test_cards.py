"""Cluster cards and plots: distinctive terms, representative records, tabular differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clusterflow.cards import cards_markdown, cluster_cards
from clusterflow.errors import ConfigError
from clusterflow.plots import plot_cluster_map, plot_sweep


@pytest.fixture
def records() -> tuple[pd.DataFrame, list[str], np.ndarray, np.ndarray]:
    texts = [
        "my card has not arrived yet",
        "when will my card arrive",
        "card delivery is late",
        "how do I reset my password",
        "forgot password cannot log in",
        "password reset link broken",
    ]
    table = pd.DataFrame(
        {
            "amount": [10.0, 12.0, 11.0, 100.0, 98.0, 102.0],
            "channel": ["app", "app", "web", "web", "web", "web"],
            "text": texts,
        }
    )
    labels = np.array([0, 0, 0, 1, 1, 1])
    features = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 3.0], [5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])
    return table, texts, labels, features


def test_cards_describe_each_cluster(records) -> None:
    table, texts, labels, features = records
    cards = cluster_cards(
        table, labels, texts=texts, features=features, examples=2, top_terms=3, min_support=2
    )
    assert [c["cluster"] for c in cards] == [0, 1]
    first, second = cards
    assert first["size"] == 3 and first["share"] == pytest.approx(0.5)
    assert "card" in first["terms"] and "password" in second["terms"]
    assert "password" not in first["terms"]
    # Nearest the centre first: rows 0 and 1 sit next to cluster 0's mean, row 2 is far.
    assert first["example_texts"] == [texts[1], texts[0]]
    assert first["numeric"]["amount"] < -0.9 and second["numeric"]["amount"] > 0.9
    assert first["categorical"]["channel"]["value"] == "app"
    assert first["categorical"]["channel"]["lift"] == pytest.approx((2 / 3) / (2 / 6), rel=1e-3)


def test_noise_card_last_and_markdown(records) -> None:
    table, texts, labels, _ = records
    labels = labels.copy()
    labels[2] = -1
    cards = cluster_cards(table, labels, texts=texts)
    assert [c["cluster"] for c in cards] == [0, 1, -1]
    text = cards_markdown(cards)
    assert "### cluster 0: 2 rows (33.3%)" in text
    assert "### noise: 1 rows" in text
    assert "**Terms:**" in text and "amount" in text


def test_cards_reject_mismatched_lengths(records) -> None:
    table, texts, labels, _ = records
    with pytest.raises(ConfigError, match="5 labels for 6 rows"):
        cluster_cards(table, labels[:5])


def test_plots_write_files(tmp_path) -> None:
    from sklearn.datasets import make_blobs

    from clusterflow.sweep import ClusterSweep

    X, _ = make_blobs(n_samples=120, centers=3, random_state=0)
    sweep = ClusterSweep(k_max=5, stability_resamples=1, silhouette_sample=120).fit(X)
    out = plot_sweep(sweep.results_, tmp_path / "sweep.png")
    assert out.exists() and out.stat().st_size > 5000
    labels = sweep.labels_.copy()
    labels[:5] = -1
    big = np.repeat(X, 50, axis=0)
    out = plot_cluster_map(big, np.repeat(labels, 50), tmp_path / "map.png")
    assert out.exists() and out.stat().st_size > 5000
    with pytest.raises(ConfigError, match="expected"):
        plot_cluster_map(X, labels[:10], tmp_path / "bad.png")


def test_representatives_are_rows_with_text():
    import numpy as np
    import pandas as pd

    from clusterflow.cards import cluster_cards

    table = pd.DataFrame({"x": [0.0, 0.1, 0.2, 5.0, 5.1]})
    texts = ["", None, "a goose hit the engine", "deer on runway", ""]
    features = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    cards = cluster_cards(table, np.array([0, 0, 0, 1, 1]), texts=texts, features=features)
    assert cards[0]["example_texts"] == ["a goose hit the engine"]
    assert cards[1]["example_texts"] == ["deer on runway"]


def _strikes(seed: int = 0) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Three groups of reports that all share the same common words, each with its own topic."""
    rng = np.random.default_rng(seed)
    topics = [
        ["engine", "ingested", "fan", "blade"],
        ["windshield", "cracked", "cockpit", "glass"],
        ["wing", "leading", "edge", "dent"],
    ]
    texts, labels, phase = [], [], []
    for label, words in enumerate(topics):
        for i in range(40):
            chosen = rng.choice(words, size=2, replace=False)
            # "bird", "struck" and "damage" are in every report of every group
            texts.append(f"bird struck aircraft damage reported {chosen[0]} {chosen[1]} flt {i}")
            labels.append(label)
            phase.append("Landing" if label == 2 and i % 4 else ["Climb", "Approach"][i % 2])
    phase[0] = "Parked"  # one record of a rare level: no real lift, no support
    table = pd.DataFrame({"phase_of_flt": phase, "height": rng.normal(size=120)})
    return table, texts, np.array(labels)


def test_terms_tell_clusters_apart_and_skip_corpus_frequent_words() -> None:
    table, texts, labels = _strikes()
    cards = cluster_cards(table, labels, texts=texts, top_terms=4)
    shared = {"bird", "struck", "aircraft", "damage", "reported", "flt"}
    topics = [
        {"engine", "ingested", "fan", "blade"},
        {"windshield", "cracked", "cockpit", "glass"},
        {"wing", "leading", "edge", "dent"},
    ]
    for card, topic in zip(cards, topics, strict=True):
        assert card["terms"], card
        assert set(card["terms"]) <= topic, card["terms"]
        assert not shared & set(card["terms"])
        assert card["label"] == " / ".join(card["terms"][:3])
    firsts = [card["terms"][0] for card in cards]
    assert len(set(firsts)) == 3


def test_over_represented_levels_need_lift_and_support() -> None:
    table, texts, labels = _strikes()
    cards = cluster_cards(table, labels, texts=texts)
    for card in cards:
        for column, level in card["categorical"].items():
            assert level["lift"] >= 1.5 and level["count"] >= 3, (column, level)
            assert level["value"] != "Parked"
    assert cards[2]["categorical"]["phase_of_flt"]["value"] == "Landing"


def test_tiny_cluster_gets_a_note_and_tabular_label() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"mass": np.r_[rng.normal(0, 1, 150), rng.normal(6, 1, 150), [30.0]]})
    labels = np.r_[np.zeros(150, int), np.ones(150, int), [2]]
    cards = cluster_cards(table, labels)
    assert cards[0]["label"] == "mass low" and cards[1]["label"] == "mass high"
    assert "note" not in cards[0] and "note" not in cards[1]
    assert cards[2]["note"].startswith("too small to matter: 1 rows")
    text = cards_markdown(cards)
    assert "### cluster 1: 150 rows (49.8%) - mass high" in text
    assert "_Note: too small to matter" in text
