"""The gate on tiny fitted models: held-out rows, every outcome, and the cluster matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from clusterflow.gate import (
    MIN_HOLDOUT,
    Outcome,
    compare,
    decide,
    holdout_positions,
    match_clusters,
)
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


def test_a_cluster_absent_from_the_sample_gets_an_id_of_its_own():
    """The helper's retrain: raw 1 took old id 8 and raw 8, in no held-out row, kept 8."""
    old = np.array([8, 8, 0, 0])
    new = np.array([1, 1, 0, 0])
    mapping, _ = match_clusters(new, old, reserved={0, 8}, new_ids=range(9))
    assert mapping[1] == 8 and mapping[0] == 0
    assert sorted(mapping) == list(range(9))
    assert len(set(mapping.values())) == 9  # one id per cluster
    assert min(mapping[c] for c in range(2, 9)) > 8


def test_match_rejects_misaligned_arrays():
    with pytest.raises(ValueError, match="shape"):
        match_clusters(np.zeros(3, dtype=int), np.zeros(4, dtype=int))


def test_holdout_is_seeded_bounded_and_skipped_when_too_small():
    first = holdout_positions(1000, share=0.15, max_rows=2000, random_state=0)
    assert len(first) == 150 and np.all(np.diff(first) > 0)
    np.testing.assert_array_equal(
        first, holdout_positions(1000, share=0.15, max_rows=2000, random_state=0)
    )
    assert not np.array_equal(
        first, holdout_positions(1000, share=0.15, max_rows=2000, random_state=1)
    )
    assert len(holdout_positions(100_000, share=0.15, max_rows=2000, random_state=0)) == 2000
    too_few = round(MIN_HOLDOUT / 0.15) - 10
    assert len(holdout_positions(too_few, share=0.15, max_rows=2000, random_state=0)) == 0


def test_holdout_takes_the_most_recent_rows_when_times_are_given():
    rng = np.random.default_rng(0)
    days = pd.Series(pd.date_range("2024-01-01", periods=200, freq="D").astype(str))
    shuffled = days.iloc[rng.permutation(200)].reset_index(drop=True)
    shuffled.iloc[5] = "not a date"  # unreadable times count as oldest
    held = holdout_positions(200, share=0.2, max_rows=2000, random_state=0, times=shuffled)
    assert len(held) == 40
    assert set(shuffled.iloc[held]) == set(days.iloc[-40:])
    numeric = pd.Series(np.arange(200)[::-1])  # a year or an epoch works the same way
    np.testing.assert_array_equal(
        holdout_positions(200, share=0.2, max_rows=2000, random_state=0, times=numeric),
        np.arange(40),
    )


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


GATE = {"resamples": 100, "random_state": 0}


def test_first_model_is_promoted(blobs):
    frame, X = blobs
    decision = decide(_model(_true_centres(X)), None, frame, **GATE)
    assert decision.promote and decision.outcome == Outcome.FIRST
    assert decision.champion_score is None and decision.rows == 150


def test_better_challenger_is_promoted_beyond_the_noise(blobs):
    frame, X = blobs
    champion = _model(_true_centres(X, k=2))  # two of the three blobs merged
    decision = decide(_model(_true_centres(X)), champion, frame, champion_version="1", **GATE)
    assert decision.promote and decision.outcome == Outcome.BETTER
    low, high = decision.interval
    assert 0 < low <= decision.challenger_score - decision.champion_score <= high
    assert "above zero" in decision.reason
    assert 0 < decision.agreement < 1  # related but different assignments
    assert decision.to_dict()["rows"] == 150 and decision.to_dict()["resamples"] == 100


def test_a_tie_keeps_the_champion_and_aligns_the_ids(blobs):
    frame, X = blobs
    centres = _true_centres(X)
    champion = _model(centres)
    challenger = _model(centres[[2, 0, 1]])  # same clusters, rotated numbering
    decision = decide(challenger, champion, frame, champion_version="1", **GATE)
    assert not decision.promote and decision.outcome == Outcome.TIE
    assert decision.interval == (0.0, 0.0) and decision.agreement == 1.0
    assert "the champion stays" in decision.reason
    assert decision.cluster_map == {0: 2, 1: 0, 2: 1}
    assert decision.matched_share == 1.0
    challenger.cluster_map = decision.cluster_map
    np.testing.assert_array_equal(
        challenger.predict(frame)["cluster"], champion.predict(frame)["cluster"]
    )


def test_a_challenger_cluster_no_held_out_row_falls_in_is_not_merged(blobs):
    frame, X = blobs
    centres = _true_centres(X)
    far = centres.mean(axis=0) + 100.0  # a fourth cluster, far from every row
    challenger = _model(np.vstack([centres[[2, 0, 1]], far]))
    decision = decide(challenger, _model(centres), frame, champion_version="1", **GATE)
    assert sorted(decision.cluster_map) == [0, 1, 2, 3]
    assert len(set(decision.cluster_map.values())) == 4
    assert decision.cluster_map[3] not in {0, 1, 2}


def test_a_cluster_no_held_out_row_falls_in_is_matched_on_the_training_rows(blobs):
    """The same model retrained: its smallest cluster had no held-out row and got a new id."""
    frame, X = blobs
    centres = _true_centres(X)
    champion, challenger = _model(centres), _model(centres)
    labels = champion.predict(frame)["cluster"].to_numpy()
    holdout = frame[labels != 0]  # no held-out row in cluster 0
    alone = decide(challenger, champion, holdout, champion_version="1", **GATE)
    assert alone.cluster_map[0] == 3  # held-out rows alone cannot place cluster 0
    both = decide(challenger, champion, holdout, champion_version="1", reference=frame, **GATE)
    assert both.cluster_map == {0: 0, 1: 1, 2: 2}


def test_a_nearly_equal_challenger_is_a_tie(blobs):
    frame, X = blobs
    centres = _true_centres(X)
    nudged = centres + np.array([0.05, -0.05])  # a retrain with another seed, say
    decision = decide(_model(nudged), _model(centres), frame, champion_version="1", **GATE)
    assert decision.outcome == Outcome.TIE and not decision.promote
    assert decision.interval[0] <= 0 <= decision.interval[1]


def test_worse_challenger_is_rejected(blobs):
    frame, X = blobs
    champion = _model(_true_centres(X))
    worse = _model(_true_centres(X, k=6))
    decision = decide(worse, champion, frame, champion_version="3", **GATE)
    assert not decision.promote and decision.outcome == Outcome.WORSE
    assert "loses to champion version 3" in decision.reason
    assert decision.interval[1] < 0


def test_the_score_is_a_parameter(blobs):
    frame, X = blobs

    def more_clusters_score(X, labels, *, random_state=0):
        return float(len(np.unique(labels)))

    champion = _model(_true_centres(X))
    finer = _model(_true_centres(X, k=6))
    decision = decide(finer, champion, frame, score=more_clusters_score, **GATE)
    assert decision.promote and decision.challenger_score == 6 and decision.champion_score == 3
    assert decision.metric.endswith("more_clusters_score")


def test_both_models_are_scored_in_the_challengers_feature_space(blobs):
    frame, X = blobs
    labels_a = np.repeat([0, 1, 2], 50)
    labels_b = labels_a.copy()
    labels_b[:10] = 1
    found = compare(X, labels_a, labels_b, resamples=50, random_state=0)
    assert found.rows == 150 and found.resamples == 50
    assert found.low <= found.difference <= found.high


def _other_columns() -> ClusterModel:
    return ClusterModel(
        roles=ColumnRoles(id_column=None, text_column=None, numeric=("z",), categorical=()),
        imputer=None,
        features=_Identity(),
        clusterer=_Centres([[0.0]]),
        embedder=None,
    )


def test_incompatible_champion_stays_unless_asked(blobs):
    frame, X = blobs
    decision = decide(
        _model(_true_centres(X)), _other_columns(), frame, champion_version="2", **GATE
    )
    assert not decision.promote and decision.outcome == Outcome.INCOMPATIBLE
    assert "cannot score this data" in decision.reason
    assert "--replace-incompatible" in decision.reason
    assert decision.champion_score is None


def test_incompatible_champion_is_replaced_when_asked(blobs):
    frame, X = blobs
    decision = decide(
        _model(_true_centres(X)),
        _other_columns(),
        frame,
        champion_version="2",
        replace_incompatible=True,
        **GATE,
    )
    assert decision.promote and decision.outcome == Outcome.INCOMPATIBLE
    assert "replace_incompatible was asked" in decision.reason


def test_too_few_held_out_rows_keep_the_champion(blobs):
    frame, X = blobs
    decision = decide(
        _model(_true_centres(X)),
        _model(_true_centres(X, k=2)),
        frame.head(MIN_HOLDOUT - 1),
        champion_version="1",
        **GATE,
    )
    assert not decision.promote and decision.outcome == Outcome.NO_EVIDENCE


def test_a_table_too_small_to_hold_rows_out_keeps_a_compatible_champion(blobs):
    """No held-out rows at all (a table under MIN_HOLDOUT / share rows): no evidence, not an
    incompatible champion (the champion was once asked to score zero rows and failed)."""
    from clusterflow.features import FeatureBuilder

    frame, X = blobs
    champion = _model(_true_centres(X, k=2))
    champion.features = FeatureBuilder(numeric_columns=("x", "y")).fit(frame)  # refuses 0 rows
    decision = decide(
        _model(_true_centres(X)), champion, frame.head(0), champion_version="1", **GATE
    )
    assert not decision.promote and decision.outcome == Outcome.NO_EVIDENCE
    assert decision.rows == 0 and "only 0 held-out rows" in decision.reason


def test_a_table_too_small_to_hold_rows_out_still_checks_the_champions_columns(blobs):
    frame, X = blobs
    decision = decide(
        _model(_true_centres(X)), _other_columns(), frame.head(0), champion_version="2", **GATE
    )
    assert not decision.promote and decision.outcome == Outcome.INCOMPATIBLE
    assert "missing" in decision.reason


@pytest.mark.parametrize("noise", [False, True])
def test_the_fast_bootstrap_equals_scoring_each_resample(blobs, noise):
    from clusterflow.gate import provisional_labeling_score

    _, X = blobs
    labels = np.repeat([0, 1, 2], 50)
    other = np.repeat([0, 1, 1], 50)
    if noise:
        labels[::7] = -1
    fast = compare(X, labels, other, resamples=30, random_state=3, score=provisional_labeling_score)

    def slow(X, labels, *, random_state=0):  # the same score, not recognised as the fast one
        return provisional_labeling_score(X, labels, random_state=random_state)

    reference = compare(X, labels, other, resamples=30, random_state=3, score=slow)
    assert fast.low == pytest.approx(reference.low, abs=1e-5)
    assert fast.high == pytest.approx(reference.high, abs=1e-5)
    assert fast.challenger == pytest.approx(reference.challenger, abs=1e-6)


def test_the_sweep_never_sees_the_held_out_rows(tmp_path, monkeypatch):
    from clusterflow import stages
    from clusterflow.config import TrainConfig
    from clusterflow.store import StageStore
    from clusterflow.sweep import ClusterSweep

    X, _ = make_blobs(n_samples=400, centers=3, random_state=0)
    frame = pd.DataFrame(X, columns=["x", "y"])
    frame["when"] = pd.date_range("2024-01-01", periods=400, freq="h")[::-1].astype(str)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    config = TrainConfig(
        data=str(path),
        time_column="when",
        workspace=str(tmp_path),
        sweep={"algorithms": ["kmeans"], "k_min": 2, "k_max": 4, "stability_resamples": 0},
    )
    fitted_on: list[np.ndarray] = []
    real_fit = ClusterSweep.fit

    def recording_fit(self, X, y=None):
        fitted_on.append(np.asarray(X))
        return real_fit(self, X, y)

    monkeypatch.setattr(ClusterSweep, "fit", recording_fit)
    store = StageStore(tmp_path / "stages")
    val = stages.validate(stages.ingest(path, store), config, store)
    assert "when" not in val.column_roles.features  # the time column is never a feature
    swept = stages.sweep(val, stages.impute(val, config, store), None, config, store)
    held = swept.holdout()
    assert swept.n_holdout == len(held) == 60
    np.testing.assert_array_equal(held, np.arange(60))  # the most recent hours come first
    (seen,) = fitted_on
    assert len(seen) == 340  # the clusterer saw only the other rows
    assert len(np.load(swept.labels_path)) == 400  # every row is still assigned


def test_the_imputer_never_sees_the_held_out_rows(tmp_path):
    """The challenger's imputer is fitted on the training rows: the held-out rows' values (here
    the 60 most recent, ten times larger) do not move the fill of a training row's gap."""
    from clusterflow import stages
    from clusterflow.config import TrainConfig
    from clusterflow.store import StageStore

    X, _ = make_blobs(n_samples=400, centers=3, random_state=0)
    frame = pd.DataFrame(X, columns=["x", "y"])
    frame["z"] = np.linspace(1.0, 2.0, 400)
    frame.loc[:59, "z"] *= 10  # the held-out rows: the most recent hours come first
    frame.loc[[100, 200], "z"] = np.nan
    frame["size"] = np.where(np.arange(400) % 2, "small", "large")
    frame.loc[:4, "size"] = "huge"  # a level only held-out rows have (birds: "Over 100")
    frame.loc[150, "size"] = np.nan
    frame["when"] = pd.date_range("2024-01-01", periods=400, freq="h")[::-1].astype(str)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    config = TrainConfig(
        data=str(path), time_column="when", workspace=str(tmp_path), impute={"method": "mean"}
    )
    store = StageStore(tmp_path / "stages")
    val = stages.validate(stages.ingest(path, store), config, store)
    held, train = stages.training_rows(val, config)
    np.testing.assert_array_equal(held, np.arange(60))
    filled = pd.read_parquet(stages.impute(val, config, store).path)
    training_mean = frame["z"].iloc[train].mean()  # NaN-skipping, the two gaps are in train
    assert filled.loc[100, "z"] == pytest.approx(training_mean)
    assert filled.loc[150, "size"] in {"small", "large"}  # filled with a level seen in fit
    assert (filled.loc[:4, "size"] == "huge").all()  # observed values stay as they are
    assert training_mean < frame["z"].mean() * 0.8  # with the held-out rows it would be far larger
    # Another held-out share is another imputer: the stage's key carries it.
    other = config.model_copy(
        update={"registry": config.registry.model_copy(update={"holdout_share": 0.3})}
    )
    assert not stages.impute(val, other, store).reused


def test_a_column_known_only_in_held_out_rows_is_one_clear_error(tmp_path):
    """A column filled only in the most recent rows (added lately) has nothing to impute from
    in the training rows: the run says so and what to do, in one line."""
    from clusterflow import stages
    from clusterflow.config import TrainConfig
    from clusterflow.errors import ConfigError
    from clusterflow.store import StageStore

    X, _ = make_blobs(n_samples=400, centers=3, random_state=0)
    frame = pd.DataFrame(X, columns=["x", "y"])
    frame["late"] = np.where(np.arange(400) < 60, np.arange(400.0), np.nan)  # the 60 most recent
    frame["when"] = pd.date_range("2024-01-01", periods=400, freq="h")[::-1].astype(str)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    config = TrainConfig(
        data=str(path), time_column="when", workspace=str(tmp_path), features={"max_missing": 0.9}
    )
    store = StageStore(tmp_path / "stages")
    val = stages.validate(stages.ingest(path, store), config, store)
    assert "late" in val.column_roles.numeric
    with pytest.raises(
        ConfigError, match=r"\['late'\] have no value in the 340 training rows"
    ) as err:
        stages.impute(val, config, store)
    assert "--holdout-share" in err.value.hint and "\n" not in str(err.value)


def test_out_of_sample_the_true_k_wins_on_a_few_held_out_rows():
    # 40 held-out rows of three separated blobs, judged under Gaussians fitted on the 400
    # training rows as each model labels them: three beats two both ways round, and six
    # (finer than the data) is not promoted over three.
    centres = [(0, 0), (8, 0), (0, 8)]
    X, _ = make_blobs(n_samples=440, centers=centres, cluster_std=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=["x", "y"])
    held, train = frame.iloc[400:], frame.iloc[:400]
    three, two, six = (_model(_true_centres(X[:400], k)) for k in (3, 2, 6))
    out = {"reference": train, **GATE}

    assert decide(three, two, held, champion_version="1", **out).outcome == Outcome.BETTER
    kept = decide(two, three, held, champion_version="1", **out)
    assert kept.outcome == Outcome.WORSE and not kept.promote
    assert "out of sample" in kept.metric
    assert not decide(six, three, held, champion_version="1", **out).promote


def test_too_few_reference_rows_fall_back_to_the_in_sample_evidence(blobs):
    frame, X = blobs
    centres = _true_centres(X)
    decision = decide(_model(centres), _model(centres), frame, reference=frame.iloc[:10], **GATE)
    assert "out of sample" not in decision.metric and decision.outcome == Outcome.TIE


def _on_sphere(n_rows: int, dims: int, groups: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows around ``groups`` directions, noisy enough that 16 components explain < 80%."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(groups, dims))
    truth = np.arange(n_rows) % groups
    X = directions[truth] + rng.normal(scale=1.5, size=(n_rows, dims))
    return X / np.linalg.norm(X, axis=1, keepdims=True), truth


def test_on_the_sphere_the_gate_scores_by_the_euclidean_silhouette():
    # Text rows (unit norm, the silhouette regime): the held-out silhouette is the euclidean
    # one, not the cosine one the selection rule uses (benchmarks/gate_quality.py: fewer worse
    # challengers promoted and more better ones on every text-only set).
    from sklearn.metrics import silhouette_score

    from clusterflow.cluster.evidence import MIN_EXPLAINED, Reducer

    X, truth = _on_sphere(90, 60, 3, seed=0)
    assert Reducer(X).explained < MIN_EXPLAINED
    coarse = (truth > 0).astype(int)
    found = compare(X, truth, coarse, resamples=50, random_state=0)
    assert found.challenger == pytest.approx(silhouette_score(X, truth), abs=1e-5)
    assert found.champion == pytest.approx(silhouette_score(X, coarse), abs=1e-5)
    assert found.challenger != pytest.approx(silhouette_score(X, truth, metric="cosine"), abs=1e-3)
    assert found.low > 0  # the true grouping beats the coarse one beyond the noise
