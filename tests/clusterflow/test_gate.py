"""The gate's cluster matching (pure) and decision on tiny fitted models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from clusterflow.gate import decide, evaluation_sample, match_clusters
from clusterflow.model import ClusterModel
from clusterflow.schema import ColumnRoles


def test_match_recovers_a_permutation():
    old = np.array([0, 0, 1, 1, 2, 2, 2])
    new = np.array([2, 2, 0, 0, 1, 1, 1])  # the same grouping, numbered differently
    mapping, share = match_clusters(new, old)
    assert mapping == {2: 0, 0: 1, 1: 2}
    assert share == 1.0


def test_new_cluster_gets_an_unused_id_and_noise_stays_noise():
    old = np.array([0, 0, 1, 1, 1, -1])
    new = np.array([1, 1, 0, 0, 2, -1])  # cluster 2 splits off old cluster 1
    mapping, share = match_clusters(new, old, reserved={0, 1, 5})
    assert mapping[1] == 0 and mapping[0] == 1
    assert mapping[2] == 6  # above every id the old model ever published
    assert -1 not in mapping
    assert share == pytest.approx(4 / 5)


def test_match_rejects_misaligned_arrays():
    with pytest.raises(ValueError, match="shape"):
        match_clusters(np.zeros(3, dtype=int), np.zeros(4, dtype=int))


def test_evaluation_sample_is_seeded_and_bounded():
    frame = pd.DataFrame({"a": range(100)})
    first = evaluation_sample(frame, 10, 0)
    assert len(first) == 10 and first.index.is_monotonic_increasing
    assert first.index.equals(evaluation_sample(frame, 10, 0).index)
    assert len(evaluation_sample(frame, 500, 0)) == 100


class _Identity:
    def transform(self, frame, embeddings=None):
        return frame.to_numpy(dtype=float)


class _Centres:
    """A nearest-centre clusterer (the shape ClusterSweep exposes to the model)."""

    def __init__(self, centres):
        self.cluster_centers_ = np.asarray(centres, dtype=float)
        self.metric_ = "euclidean"

    def transform(self, X):
        return np.linalg.norm(X[:, None, :] - self.cluster_centers_[None], axis=2)

    def predict(self, X):
        return self.transform(X).argmin(axis=1)


def _model(centres) -> ClusterModel:
    roles = ColumnRoles(id_column=None, text_column=None, numeric=("x", "y"), categorical=())
    return ClusterModel(
        roles=roles, imputer=None, features=_Identity(), clusterer=_Centres(centres), embedder=None
    )


@pytest.fixture
def blobs() -> tuple[pd.DataFrame, np.ndarray]:
    X, _ = make_blobs(n_samples=150, centers=3, cluster_std=0.5, random_state=0)
    return pd.DataFrame(X, columns=["x", "y"]), X


def _true_centres(X, k=3):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=3, random_state=0).fit(X).cluster_centers_


def test_decide_promotes_an_equal_model_and_aligns_its_ids(blobs):
    frame, X = blobs
    centres = _true_centres(X)
    champion = _model(centres)
    challenger = _model(centres[[2, 0, 1]])  # same clusters, rotated numbering
    decision = decide(challenger, champion, frame, tolerance=0.0, champion_version="1")
    assert decision.promote and "beats or ties" in decision.reason
    assert decision.cluster_map == {0: 2, 1: 0, 2: 1}
    assert decision.matched_share == 1.0
    challenger.cluster_map = decision.cluster_map
    np.testing.assert_array_equal(
        challenger.predict(frame)["cluster"], champion.predict(frame)["cluster"]
    )


def test_decide_keeps_a_better_champion(blobs):
    frame, X = blobs
    champion = _model(_true_centres(X))
    worse = _model(_true_centres(X, k=6))
    decision = decide(worse, champion, frame, tolerance=0.02, champion_version="3")
    assert not decision.promote
    assert "loses to champion version 3" in decision.reason
    assert decision.champion_score > decision.challenger_score + 0.02


def test_champion_that_cannot_read_the_data_does_not_block(blobs):
    frame, X = blobs
    other = ClusterModel(
        roles=ColumnRoles(id_column=None, text_column=None, numeric=("z",), categorical=()),
        imputer=None,
        features=_Identity(),
        clusterer=_Centres([[0.0]]),
        embedder=None,
    )
    decision = decide(_model(_true_centres(X)), other, frame, tolerance=0.0, champion_version="2")
    assert decision.promote and "cannot score this data" in decision.reason
    assert decision.champion_score is None
