import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.utils.estimator_checks import parametrize_with_checks

from clusterflow.errors import ConfigError
from clusterflow.impute import METHODS, SCORED, FastKNNImputer, TableImputer
from clusterflow.impute._knn import _equal_columns
from tests.conftest import shared

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]


@pytest.fixture
def tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "b": [10.0, np.nan, 30.0, 40.0, 50.0, 60.0],
            "colour": ["red", "blue", "red", None, "red", "blue"],
            "note": ["x", None, "y", "z", None, "w"],
        },
        index=[10, 11, 12, 13, 14, 15],
    )


def correlated(rows: int, cols: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    full = rng.normal(size=(rows, 3)) @ rng.normal(size=(3, cols))
    full += 0.5 * rng.normal(size=(rows, cols))
    return (full - full.mean(axis=0)) / full.std(axis=0)


# ---- tiny frames: the estimator contract ------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_every_method_fills_every_gap_with_valid_values(tiny: pd.DataFrame, method: str) -> None:
    imputer = TableImputer(
        method=method, numeric_columns=["a", "b"], categorical_columns=["colour"]
    )
    assert imputer.fit(tiny) is imputer
    out = imputer.transform(tiny)
    assert list(out.columns) == list(tiny.columns)
    assert out.index.equals(tiny.index)
    assert out[["a", "b"]].dtypes.tolist() == [np.float64, np.float64]
    assert not out[["a", "b", "colour"]].isna().any().any()
    assert out["colour"].dtype == object
    assert set(out["colour"]) <= {"red", "blue"}
    # Known values are kept, the column outside both lists passes through untouched.
    assert out.loc[10, "a"] == 1.0 and out.loc[11, "colour"] == "blue"
    pd.testing.assert_series_equal(out["note"], tiny["note"])
    assert imputer.method_ in SCORED


def test_columns_are_inferred_from_dtypes(tiny: pd.DataFrame) -> None:
    imputer = TableImputer(method="mean").fit(tiny)
    assert imputer.numeric_columns_ == ["a", "b"]
    assert imputer.categorical_columns_ == ["colour", "note"]
    assert imputer.categories_["colour"] == ["blue", "red"]
    assert imputer.transform(tiny).loc[11, "b"] == pytest.approx(np.mean([10, 30, 40, 50, 60]))


def test_fit_and_transform_do_not_mutate_input(tiny: pd.DataFrame) -> None:
    before = tiny.copy()
    TableImputer(method="knn").fit(tiny).transform(tiny)
    TableImputer(method="auto").fit_transform(tiny)
    pd.testing.assert_frame_equal(tiny, before)


def test_transform_before_fit_raises(tiny: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        TableImputer().transform(tiny)


def test_init_only_stores_parameters_and_clone_works() -> None:
    imputer = TableImputer(method="knn", n_neighbors=3, random_state=7)
    assert imputer.get_params()["n_neighbors"] == 3
    assert clone(imputer).get_params() == imputer.get_params()


def test_entirely_missing_column_raises_config_error(tiny: pd.DataFrame) -> None:
    frame = tiny.assign(empty=np.nan)
    with pytest.raises(ConfigError, match="'empty'.*entirely missing") as info:
        TableImputer().fit(frame)
    assert "exclude-columns" in info.value.hint


def test_unknown_method_and_column_raise_config_error(tiny: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="'method' parameter.*'magic'"):
        TableImputer(method="magic").fit(tiny)
    with pytest.raises(ConfigError, match="not in the data"):
        TableImputer(numeric_columns=["nope"]).fit(tiny)
    fitted = TableImputer(method="mean").fit(tiny)
    with pytest.raises(ConfigError, match="missing from the data"):
        fitted.transform(tiny.drop(columns="b"))


def test_row_with_every_feature_missing_gets_means_and_modes() -> None:
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0, 3.0, np.nan, 5.0],
            "b": [2.0, 4.0, 6.0, np.nan, 10.0],
            "c": ["u", "v", "u", None, "u"],
        }
    )
    for method in ("knn", "iterative"):
        out = TableImputer(method=method).fit(frame).transform(frame)
        assert len(out) == len(frame)
        assert out.loc[3, "c"] in {"u", "v"}
        assert np.isfinite(out.loc[3, ["a", "b"]].to_numpy(dtype=float)).all()
    out = TableImputer(method="knn").fit(frame).transform(frame)
    assert out.loc[3, "a"] == pytest.approx(2.75) and out.loc[3, "c"] == "u"


def test_auto_records_one_score_per_candidate_and_is_deterministic(tiny: pd.DataFrame) -> None:
    first = TableImputer(random_state=3).fit(tiny)
    second = TableImputer(random_state=3).fit(tiny)
    scores = first.scores_
    assert list(scores["method"]) == list(SCORED)
    assert {"numeric_rmse", "categorical_error", "score", "seconds"} <= set(scores.columns)
    assert first.method_ == scores.loc[scores["numeric_rmse"].idxmin(), "method"]
    assert first.categorical_method_ == scores.loc[scores["categorical_error"].idxmin(), "method"]
    pd.testing.assert_frame_equal(
        scores.drop(columns="seconds"), second.scores_.drop(columns="seconds")
    )
    pd.testing.assert_frame_equal(first.transform(tiny), second.transform(tiny))


def test_pickle_and_skops_round_trip(tmp_path: Path, tiny: pd.DataFrame) -> None:
    for method in ("knn", "iterative", "median"):
        imputer = TableImputer(method=method).fit(tiny)
        expected = imputer.transform(tiny)
        pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(imputer)).transform(tiny), expected)
        path = tmp_path / f"{method}.skops"
        sio.dump(imputer, path)
        untrusted = sio.get_untrusted_types(file=path)
        assert all(t.startswith(("clusterflow.", "sklearn.", "numpy.")) for t in untrusted)
        loaded = sio.load(path, trusted=untrusted)
        pd.testing.assert_frame_equal(loaded.transform(tiny), expected)


def test_unseen_category_at_transform_passes_through(tiny: pd.DataFrame) -> None:
    imputer = TableImputer(method="knn", numeric_columns=["a", "b"], categorical_columns=["colour"])
    new = tiny.assign(colour=["green", None, "red", "red", "blue", "red"])
    out = imputer.fit(tiny).transform(new)
    assert out.loc[10, "colour"] == "green"
    assert out.loc[11, "colour"] in {"red", "blue"}


# ---- fast KNN against scikit-learn's KNNImputer ------------------------------------------------


def test_fast_knn_rmse_within_five_percent_of_knnimputer() -> None:
    full = correlated(1500, 8, seed=0)
    rng = np.random.default_rng(0)
    mask = rng.random(full.shape) < 0.1
    data = np.where(mask, np.nan, full)

    def rmse(filled: np.ndarray) -> float:
        return float(np.sqrt(np.mean((filled[mask] - full[mask]) ** 2)))

    fast = rmse(FastKNNImputer(n_neighbors=5).fit_transform(data))
    reference = rmse(KNNImputer(n_neighbors=5).fit_transform(data))
    assert fast <= 1.05 * reference
    assert fast < 0.8  # far better than mean imputation (about 1.0 here)


@parametrize_with_checks([FastKNNImputer()])
def test_fast_knn_passes_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_fast_knn_uses_only_donors_that_observe_the_column() -> None:
    # Row 0 is closest to row 1, but row 1 lacks column 1: the value must come from rows 2-3.
    data = np.array(
        [[0.0, np.nan], [0.01, np.nan], [1.0, 7.0], [1.1, 9.0], [50.0, 100.0]], dtype=float
    )
    out = FastKNNImputer(n_neighbors=2).fit(data).transform(data)
    assert out[0, 1] == pytest.approx(8.0)
    assert out[1, 1] == pytest.approx(8.0)


def test_fast_knn_groups_columns_observed_by_the_same_rows() -> None:
    # Columns 0 and 2 are seen by the same rows, and so are 1 and 3 (a one-hot block's columns
    # are). 9 rows: the packed patterns span two bytes, and columns 4 and 5 differ only in the
    # second (row 8).
    observed = np.ones((9, 6), dtype=bool)
    observed[[1, 8], 0] = observed[[1, 8], 2] = False
    observed[[0, 3], 1] = observed[[0, 3], 3] = False
    observed[8, 4] = False
    assert _equal_columns(observed).tolist() == [0, 1, 0, 1, 2, 3]
    assert _equal_columns(np.ones((100_000, 3), dtype=bool)).tolist() == [0, 0, 0]
    # The same groups as np.unique over the columns, which it replaced.
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random((int(rng.integers(1, 20)), 8)) < 0.3
        mask[:, 4:] = mask[:, :4]  # some columns repeat others
        _, reference = np.unique(mask.T, axis=0, return_inverse=True)
        labels = _equal_columns(mask)
        assert np.array_equal(labels[:, None] == labels, reference[:, None] == reference)


# ---- real data: penguins ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    # species is the label: the pipeline excludes it from features, so does this test.
    return pd.read_csv(shared("penguins.csv")).drop(columns="species")


def test_chosen_imputer_beats_sklearn_baselines_on_penguins(penguins: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    values = penguins[NUMERIC].to_numpy(dtype=float)
    known = np.argwhere(~np.isnan(values))
    hide = known[rng.choice(len(known), size=len(known) // 10, replace=False)]
    rows, cols = hide[:, 0], hide[:, 1]
    masked_values = values.copy()
    masked_values[rows, cols] = np.nan
    masked = penguins.copy()
    masked[NUMERIC] = masked_values
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)

    def rmse(filled: np.ndarray) -> float:
        error = (filled[rows, cols] - values[rows, cols]) / std[cols]
        return float(np.sqrt(np.mean(error**2)))

    standard = (masked_values - mean) / std
    baselines = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterativeImputer's convergence notice
        for name, estimator in [
            ("mean", SimpleImputer()),
            ("knn", KNNImputer()),
            ("iterative", IterativeImputer(random_state=0)),
        ]:
            baselines[name] = rmse(estimator.fit_transform(standard) * std + mean)
    imputer = TableImputer(random_state=0).fit(masked)
    out = imputer.transform(masked)
    chosen = rmse(out[NUMERIC].to_numpy(dtype=float))
    assert chosen <= min(baselines.values()), (imputer.method_, chosen, baselines)
    # The genuine gaps in sex come back as valid categories.
    assert penguins["sex"].isna().sum() == 11
    assert set(out["sex"]) == {"female", "male"}


def test_categorical_gaps_on_penguins_beat_the_mode(penguins: pd.DataFrame) -> None:
    imputer = TableImputer(random_state=0).fit(penguins)
    scores = imputer.scores_.set_index("method")["categorical_error"]
    assert scores[imputer.method_] < scores["most_frequent"]


def test_pandas_extension_dtypes_are_handled() -> None:
    frame = pd.DataFrame(
        {
            "count": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "label": pd.array(["a", None, "b", "a", "b"], dtype="string"),
            "kind": pd.Categorical(["x", "y", None, "x", "x"]),
            "flag": [True, False, None, True, True],
        }
    )
    imputer = TableImputer(method="knn").fit(frame)
    assert imputer.numeric_columns_ == ["count"]
    assert imputer.categorical_columns_ == ["label", "kind", "flag"]
    out = imputer.transform(frame)
    assert out["count"].dtype == np.float64 and out["count"].notna().all()
    assert out.loc[1, "label"] in {"a", "b"} and out.loc[2, "kind"] in {"x", "y"}
    assert out.loc[2, "flag"] in {True, False}
    assert list(imputer.get_feature_names_out()) == list(frame.columns)


def test_high_cardinality_column_is_capped_but_filled_validly() -> None:
    rng = np.random.default_rng(0)
    codes = [f"id{i}" for i in rng.integers(0, 200, size=400)]
    frame = pd.DataFrame({"x": rng.normal(size=400), "code": codes})
    frame.loc[::10, "code"] = None
    imputer = TableImputer(method="iterative").fit(frame)
    assert len(imputer.encoded_categories_["code"]) == 20
    out = imputer.transform(frame)
    assert set(out.loc[::10, "code"]) <= set(imputer.encoded_categories_["code"])


@pytest.mark.parametrize("method", ["auto", "knn", "iterative"])
def test_no_columns_to_impute_passes_everything_through(tiny: pd.DataFrame, method: str) -> None:
    imputer = TableImputer(method=method, numeric_columns=[], categorical_columns=[]).fit(tiny)
    pd.testing.assert_frame_equal(imputer.transform(tiny), tiny)
