"""ClusterSweep: the sklearn contract on tiny blobs, then the choice of k on real data sets."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from clusterflow.cluster.selection import partition_stands, select
from clusterflow.errors import ConfigError, NoViableClustering
from clusterflow.features import FeatureBuilder
from clusterflow.progress import listening
from clusterflow.sweep import ClusterSweep, default_k_max, k_grid
from tests.conftest import minilm_vectors, shared

FAST = {"k_max": 6, "stability_resamples": 2, "silhouette_sample": 300}


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=300, centers=4, cluster_std=0.6, random_state=0)
    return X.astype(np.float32), y


# ---------------------------------------------------------------- rules and contract
def test_default_k_max_grows_with_rows_and_is_bounded() -> None:
    assert default_k_max(20) == 10
    assert default_k_max(272) == 11
    assert default_k_max(13083) == 80
    assert default_k_max(10**7) == 100
    assert default_k_max(5) == 4
    assert default_k_max(20000) > default_k_max(2000) > default_k_max(200) - 1


def test_k_grid_dense_then_geometric() -> None:
    grid = k_grid(2, 80)
    assert grid[:19] == list(range(2, 21))
    assert grid[-1] == 80 and grid == sorted(set(grid))
    steps = np.diff(grid[19:]) / np.array(grid[19:-1])
    assert (steps <= 0.16).all()


def test_blobs_recovered_and_fitted_attributes(blobs) -> None:
    X, y = blobs
    sweep = ClusterSweep(**FAST).fit(X)
    assert sweep.k_ == 4
    assert adjusted_rand_score(y, sweep.labels_) > 0.95
    assert sweep.cluster_centers_.shape == (4, 2)
    res = sweep.results_
    expected = {
        "algorithm",
        "k",
        "silhouette",
        "davies_bouldin",
        "calinski_harabasz",
        "inertia",
        "bic",
        "stability",
        "noise_share",
        "seconds",
        "selected",
    }
    assert expected <= set(res.columns)
    assert res["selected"].sum() == 1
    assert set(res["algorithm"]) == {"kmeans", "agglomerative", "hdbscan", "gmm"}
    assert res.loc[res["algorithm"] == "gmm", "bic"].notna().all()
    assert "k=4" in sweep.rule_
    assert isinstance(sweep.disagreement_, str)
    assert sweep.params_["random_state"] == 0 and sweep.params_["k_grid"][0] == 2


@pytest.mark.parametrize("algorithm", ["kmeans", "agglomerative", "hdbscan", "gmm"])
def test_predict_reproduces_training_labels(blobs, algorithm) -> None:
    X, _ = blobs
    sweep = ClusterSweep(algorithms=(algorithm,), **FAST).fit(X)
    assert sweep.algorithm_ == algorithm
    np.testing.assert_array_equal(sweep.predict(X), sweep.labels_)
    dist = sweep.transform(X)
    assert dist.shape == (len(X), sweep.k_)
    if algorithm != "gmm":
        np.testing.assert_array_equal(dist.argmin(axis=1), sweep.labels_)


def test_hdbscan_keep_noise_reproduced_by_predict() -> None:
    X, _ = make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=0)
    rng = np.random.default_rng(0)
    X = np.vstack([X, rng.uniform(-15, 15, size=(15, 2))]).astype(np.float32)
    sweep = ClusterSweep(algorithms=("hdbscan",), noise="keep", max_noise=0.5, **FAST).fit(X)
    np.testing.assert_array_equal(sweep.predict(X), sweep.labels_)
    assert (sweep.labels_ == -1).any()
    assigned = ClusterSweep(algorithms=("hdbscan",), noise="assign", max_noise=0.5, **FAST).fit(X)
    assert (assigned.labels_ >= 0).all()


def test_deterministic(blobs) -> None:
    X, _ = blobs
    a = ClusterSweep(**FAST, random_state=3).fit(X)
    b = ClusterSweep(**FAST, random_state=3).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    pd.testing.assert_frame_equal(
        a.results_.drop(columns="seconds"), b.results_.drop(columns="seconds")
    )


def test_serialisable_with_pickle_and_skops(blobs, tmp_path) -> None:
    import skops.io as sio

    X, _ = blobs
    sweep = ClusterSweep(**FAST).fit(X)
    again = pickle.loads(pickle.dumps(sweep))
    np.testing.assert_array_equal(again.predict(X), sweep.labels_)
    path = tmp_path / "sweep.skops"
    sio.dump(sweep, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(loaded.predict(X), sweep.labels_)


def test_a_sweep_saved_before_the_mixture_starts_loads_with_one_start(blobs) -> None:
    X, _ = blobs
    sweep = ClusterSweep(**FAST).fit(X)
    state = sweep.__getstate__()
    del state["gmm_n_init"]
    old = ClusterSweep.__new__(ClusterSweep)
    old.__setstate__(state)
    assert old.get_params()["gmm_n_init"] == 1 and "ClusterSweep" in repr(old)
    np.testing.assert_array_equal(old.predict(X), sweep.labels_)


def test_cosine_chosen_for_unit_rows() -> None:
    X, _ = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    sweep = ClusterSweep(algorithms=("kmeans",), **FAST).fit(X)
    assert sweep.metric_ == "cosine"
    # Scaling rows does not change a cosine clustering.
    np.testing.assert_array_equal(sweep.predict(X * 3.0), sweep.labels_)


@pytest.fixture(scope="module")
def diffuse() -> tuple[np.ndarray, np.ndarray]:
    """Four blobs in 64 noisy dimensions: 16 PCA components hold 57% of the variance."""
    X, y = make_blobs(
        n_samples=300,
        centers=4,
        n_features=64,
        cluster_std=4.0,
        center_box=(-5, 5),
        random_state=0,
    )
    return X.astype(np.float32), y


class _EveryFamily(ClusterSweep):
    """A sweep that fits the mixtures everywhere, as before they could be skipped."""

    def _deferred(self, families, explained):
        return []


def _sweep_events(heard) -> list[tuple[int, int]]:
    return [(e.done, e.total) for e in heard if e.stage == "sweep"]


def test_mixtures_not_fitted_where_the_silhouette_proposes(diffuse) -> None:
    X, y = diffuse
    heard = []
    with listening(heard.append):
        sweep = ClusterSweep(**FAST).fit(X)
    assert sweep.skipped_ == ["gmm"] and sweep.params_["not_fitted"] == ["gmm"]
    assert "gmm" not in set(sweep.results_["algorithm"])
    assert "gmm not fitted: the likelihood's reduced view holds 56.7%" in sweep.rule_
    assert "not fitted" not in sweep.disagreement_  # a fact of the rule, not a warning
    # The bar counts the mixtures until they are skipped, then closes at the candidates fitted.
    events = _sweep_events(heard)
    assert events[-1] == (len(sweep.results_), len(sweep.results_))
    assert events[-2][1] > len(sweep.results_)
    # The same choice and runner-ups as a sweep that fits the mixtures too.
    every = _EveryFamily(**FAST).fit(X)
    assert "gmm" in set(every.results_["algorithm"])
    np.testing.assert_array_equal(sweep.labels_, every.labels_)
    assert sweep.selection_.chosen == every.selection_.chosen
    assert adjusted_rand_score(y, sweep.labels_) == 1.0


def test_mixtures_fitted_when_no_partition_stands(diffuse, monkeypatch) -> None:
    X, _ = diffuse
    monkeypatch.setattr("clusterflow.cluster.sweep.partition_stands", lambda *a, **k: False)
    heard = []
    with listening(heard.append):
        sweep = ClusterSweep(algorithms=("gmm", "kmeans", "agglomerative"), **FAST).fit(X)
    assert sweep.skipped_ == [] and "not fitted" not in sweep.rule_
    # Fitted last, listed in the order asked for; the bar's total never moves.
    assert list(dict.fromkeys(sweep.results_["algorithm"])) == ["gmm", "kmeans", "agglomerative"]
    events = _sweep_events(heard)
    assert {total for _, total in events} == {len(sweep.results_)}
    assert [done for done, _ in events] == list(range(1, len(sweep.results_) + 1))


def test_mixtures_fitted_when_no_partition_is_asked_for(diffuse) -> None:
    X, _ = diffuse
    sweep = ClusterSweep(algorithms=("hdbscan", "gmm"), **FAST).fit(X)
    assert sweep.skipped_ == [] and "gmm" in set(sweep.results_["algorithm"])


def _table(**partition: float) -> pd.DataFrame:
    """Candidates where the silhouette proposes: two k-means rows and a stable mixture."""
    base = {
        "silhouette": 0.3,
        "evidence": -1.0,
        "stability": 0.9,
        "prediction_strength": 0.9,
        "noise_share": 0.0,
        "min_share": 0.3,
        "evidence_share": 0.5,
    }
    rows = [
        {**base, "algorithm": "kmeans", "k": 2, "silhouette": 0.4, **partition},
        {**base, "algorithm": "kmeans", "k": 3, **partition},
        {**base, "algorithm": "gmm", "k": 3, "silhouette": 0.2},
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("partition", "stands"),
    [
        ({}, True),
        ({"stability": 0.3}, False),  # step 1 would drop its stability check for the mixture
        ({"min_share": 0.01}, False),  # and its size check
        ({"evidence": float("nan")}, False),
        ({"silhouette": float("nan")}, False),
    ],
)
def test_a_partition_stands_only_where_the_mixtures_cannot_change_the_choice(
    partition, stands
) -> None:
    table = _table(**partition)
    assert partition_stands(table, k_min=2, k_max=3) is stands
    with_mixture = select(table, k_min=2, k_max=3).chosen
    if stands:  # then the mixture's row cannot change the choice
        without = select(table[table["algorithm"] != "gmm"], k_min=2, k_max=3).chosen
        assert (with_mixture.algorithm, with_mixture.k) == (without.algorithm, without.k)
    elif "stability" in partition or "min_share" in partition:
        assert with_mixture.algorithm == "gmm"  # the mixture alone passes: it is chosen
    assert not partition_stands(table, k_min=2, k_max=3, pinned=4)


def test_config_errors(blobs) -> None:
    X, _ = blobs
    with pytest.raises(ConfigError, match="k_min=8 is larger than k_max=5"):
        ClusterSweep(k_min=8, k_max=5).fit(X)
    with pytest.raises(ConfigError, match="fewer than k_min"):
        ClusterSweep(k_min=5).fit(X[:4])
    with pytest.raises(ConfigError, match="unknown algorithms"):
        ClusterSweep(algorithms=("dbscan",)).fit(X)
    sweep = ClusterSweep(**FAST).fit(X)
    with pytest.raises(ConfigError, match="fitted on 2"):
        sweep.predict(np.zeros((3, 5)))


def test_a_run_names_the_file_and_the_option_when_the_rows_are_too_few() -> None:
    from clusterflow.config import TrainConfig
    from clusterflow.errors import ValidationFailed
    from clusterflow.stages import make_sweep

    def config(**sweep) -> TrainConfig:
        return TrainConfig(data="data/small.csv", sweep=sweep)

    with pytest.raises(ValidationFailed, match="small.csv: only 2 valid rows to cluster"):
        make_sweep(config(), 2, 2)
    with pytest.raises(ConfigError, match="--k 25: small.csv has 21 rows to cluster"):
        make_sweep(config(k=25), 21, 21)
    with pytest.raises(ConfigError, match="--k-min 21: small.csv has 21 rows"):
        make_sweep(config(k_min=21), 21, 21)
    pinned = make_sweep(config(k=20), 21, 21)
    assert pinned.k_min == pinned.k_max == 20


def test_no_viable_clustering_on_identical_rows() -> None:
    X = np.ones((40, 3), dtype=np.float32)
    with pytest.raises(NoViableClustering, match="no viable clustering"):
        ClusterSweep(k_max=4, stability_resamples=1).fit(X)


# ---------------------------------------------------------------- real data sets
def test_faithful_chooses_two() -> None:
    X = StandardScaler().fit_transform(pd.read_csv(shared("faithful.csv")))
    sweep = ClusterSweep().fit(X)
    assert sweep.k_ == 2, sweep.rule_


def test_penguins_ari() -> None:
    df = pd.read_csv(shared("penguins.csv")).dropna().reset_index(drop=True)
    builder = FeatureBuilder(
        numeric_columns=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
        categorical_columns=["island", "sex"],
    )
    sweep = ClusterSweep().fit(builder.fit_transform(df))
    ari = adjusted_rand_score(df["species"], sweep.labels_)
    assert ari >= 0.85, (ari, sweep.rule_)
    np.testing.assert_array_equal(sweep.predict(builder.transform(df)), sweep.labels_)


@pytest.mark.slow
def test_stackoverflow_sample_ari(embedding_cache) -> None:
    df = pd.read_csv(shared("stackoverflow_titles.csv"))
    X = minilm_vectors(df["text"].astype(str).tolist(), embedding_cache)
    idx = (
        df.groupby("label", group_keys=False)
        .apply(lambda g: g.sample(150, random_state=0), include_groups=False)
        .index.to_numpy()
    )
    sweep = ClusterSweep().fit(X[idx])
    ari = adjusted_rand_score(df["label"].to_numpy()[idx], sweep.labels_)
    assert ari >= 0.566, (ari, sweep.rule_)
    assert (sweep.labels_ == -1).mean() < 0.10
