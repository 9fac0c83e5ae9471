"""Each candidate of the table imputer on tiny frames, the per-kind choice and the column scores."""

import logging
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context, get_config
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_info

from clusterflow.config import ImputeMethod
from clusterflow.errors import ConfigError
from clusterflow.impute import BLENDS, CANDIDATES, METHODS, SCORED, TableImputer
from clusterflow.impute._base import _thread_map
from clusterflow.impute._iterative import _IterativeTableImputer
from clusterflow.impute._knn import FastKNNImputer
from clusterflow.impute._selection import (
    _START_ORDER,
    Layout,
    Settings,
    _MeanImputer,
    make_backend,
)
from clusterflow.impute._simple import _ColumnStatisticImputer
from clusterflow.model import dump_component, load_component
from clusterflow_cli.main import build_parser


@pytest.fixture
def mixed() -> pd.DataFrame:
    """40 rows: y follows x, the colour follows the sign of x; gaps in every column."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    frame = pd.DataFrame(
        {
            "x": x,
            "y": 2.0 * x + 0.1 * rng.normal(size=40),
            "colour": np.where(x > 0, "red", "blue").astype(object),
        }
    )
    frame.loc[[1, 7, 13], "x"] = np.nan
    frame.loc[[2, 8, 21], "y"] = np.nan
    frame.loc[[3, 9, 30], "colour"] = None
    return frame


@pytest.mark.parametrize("method", CANDIDATES)
def test_each_candidate_fills_numerics_and_returns_seen_categories(
    mixed: pd.DataFrame, method: str
) -> None:
    out = TableImputer(method=method).fit(mixed).transform(mixed)
    assert not out.isna().any().any()
    assert set(out.loc[[3, 9, 30], "colour"]) <= {"red", "blue"}
    for column in mixed:
        known = mixed[column].notna()
        assert (out.loc[known, column] == mixed.loc[known, column]).all()


@pytest.mark.parametrize("method", ["iterative", "forest", "knn"])
def test_model_based_candidates_use_the_relations_between_columns(
    mixed: pd.DataFrame, method: str
) -> None:
    out = TableImputer(method=method).fit(mixed).transform(mixed)
    truth_y = 2.0 * out.loc[[2, 8, 21], "x"]
    assert np.abs(out.loc[[2, 8, 21], "y"] - truth_y).max() < 1.0
    expected = np.where(out.loc[[3, 9, 30], "x"] > 0, "red", "blue")
    assert (out.loc[[3, 9, 30], "colour"].to_numpy() == expected).all()


def test_forest_learns_a_relation_a_linear_model_cannot() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=300)
    frame = pd.DataFrame({"x": x, "y": x**2 + 0.05 * rng.normal(size=300)})
    hidden = np.arange(0, 300, 10)
    masked = frame.copy()
    masked.loc[hidden, "y"] = np.nan

    def error(method: str) -> float:
        out = TableImputer(method=method).fit(masked).transform(masked)
        return float(np.sqrt(np.mean((out.loc[hidden, "y"] - frame.loc[hidden, "y"]) ** 2)))

    assert error("forest") < 0.5 * error("iterative")


@pytest.mark.parametrize("gaps_in_fit", [True, False])
def test_a_linear_fill_stays_within_the_range_seen_in_fit(gaps_in_fit: bool) -> None:
    """A linear model extrapolates; the imputed value is clipped to the column's known range.

    With gaps in fit the chained equations fill ``y``; without, the model of a column that was
    complete in fit does. Both are clipped.
    """
    x = np.arange(20, dtype=float)
    frame = pd.DataFrame({"x": x, "y": 2.0 * x + 1.0})
    if gaps_in_fit:
        frame.loc[[3, 11], "y"] = np.nan
    imputer = TableImputer(method="iterative").fit(frame)
    far = pd.DataFrame({"x": [100.0, -100.0, 5.0], "y": [np.nan, np.nan, np.nan]})
    out = imputer.transform(far)["y"].to_numpy()
    known = frame["y"].dropna()
    assert out[0] == pytest.approx(known.max()) and out[1] == pytest.approx(known.min())
    assert out[2] == pytest.approx(11.0, abs=0.5)  # inside the range: the relation, unclipped


@pytest.mark.parametrize("estimator", ["linear", "trees"])
def test_a_constant_column_does_not_stop_the_bounds(estimator: str) -> None:
    X = np.column_stack([np.arange(30.0), np.full(30, 4.0), 2.0 * np.arange(30.0)])
    X[[2, 7], 2] = np.nan
    X[5, 1] = np.nan
    out = _IterativeTableImputer(estimator=estimator).fit(X).transform(X)
    assert out[5, 1] == pytest.approx(4.0)
    assert not np.isnan(out).any()


def test_a_category_far_out_of_range_keeps_its_clear_winner() -> None:
    """Block scores are not clipped: two scores above 1 would tie at 1, and argmax would pick
    the first category instead of the one the model prefers."""
    x = np.arange(40.0)
    category = np.where(x >= 30, 2, np.where(x >= 15, 1, 0))
    X = np.column_stack([x, np.eye(3)[category]])
    out = (
        _IterativeTableImputer(blocks=[(1, 4)])
        .fit(X)
        .transform(np.array([[1000.0] + [np.nan] * 3]))
    )
    scores = out[0, 1:]
    assert (scores > 1).sum() == 2  # the case that clipping would turn into a tie
    assert int(np.argmax(scores)) == 2


def test_an_imputer_saved_before_the_bounds_transforms_unclipped() -> None:
    X = np.column_stack([np.arange(20.0), 2.0 * np.arange(20.0)])
    imputer = _IterativeTableImputer().fit(X)
    del imputer.bounds_
    out = imputer.transform(np.array([[100.0, np.nan]]))
    assert out[0, 1] > 100.0


def test_forest_fits_on_a_bounded_sample() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2500, 3))
    X[rng.random(X.shape) < 0.05] = np.nan
    imputer = _IterativeTableImputer(estimator="trees").fit(X)
    assert imputer.n_fit_rows_ == 2000
    assert not np.isnan(imputer.transform(X)).any()
    assert _IterativeTableImputer(estimator="linear").fit(X).n_fit_rows_ == 2500


def _schema(path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return archive.read("schema.json").decode()


def test_a_part_of_both_choices_is_fitted_and_saved_once(
    mixed: pd.DataFrame, monkeypatch, tmp_path
) -> None:
    # The numeric and the categorical choice are blends with the forest in common.
    monkeypatch.setattr(
        "clusterflow.impute._table._best", lambda records: ("knn+forest", "iterative+forest")
    )
    imputer = TableImputer(random_state=0).fit(mixed)
    assert (imputer.method_, imputer.categorical_method_) == ("knn+forest", "iterative+forest")
    assert set(imputer.parts_) == {"knn", "iterative", "forest"}
    forest = imputer.parts_["forest"]
    assert imputer.imputer_.parts_[1] is forest is imputer.categorical_imputer_.parts_[1]
    shared = imputer.transform(mixed)

    # The same blends fitted each on its own (as before) impute the same values: every part is
    # seeded, so the one fitted copy is the model the second fit would have given.
    apart = clone(imputer)
    apart.__dict__.update({k: v for k, v in vars(imputer).items() if k.endswith("_")})
    encoded = imputer._encode(mixed)
    apart.imputer_ = clone(imputer.imputer_).fit(encoded)
    apart.categorical_imputer_ = clone(imputer.categorical_imputer_).fit(encoded)
    apart.parts_ = {}  # what an imputer saved before the shared parts holds
    assert apart.imputer_.parts_[1] is not apart.categorical_imputer_.parts_[1]
    pd.testing.assert_frame_equal(apart.transform(mixed), shared)

    # Saved, the forest is written once (the older layout wrote it twice) and shared on load.
    dump_component(imputer, tmp_path / "shared")
    dump_component(apart, tmp_path / "apart")
    trees = '"__class__": "ExtraTreesRegressor"'
    assert 2 * _schema(tmp_path / "shared.skops").count(trees) == _schema(
        tmp_path / "apart.skops"
    ).count(trees)
    loaded = load_component(tmp_path / "shared", "skops")
    assert loaded.imputer_.parts_[1] is loaded.parts_["forest"]
    assert loaded.categorical_imputer_.parts_[1] is loaded.parts_["forest"]
    pd.testing.assert_frame_equal(loaded.transform(mixed), shared)
    older = load_component(tmp_path / "apart", "skops")
    pd.testing.assert_frame_equal(older.transform(mixed), shared)
    assert vars(imputer).keys() == vars(loaded).keys()  # saving took nothing from the original


def test_auto_chooses_each_kind_on_its_own_cells(mixed: pd.DataFrame) -> None:
    imputer = TableImputer(random_state=0).fit(mixed)
    scores = imputer.scores_.set_index("method")
    assert imputer.method_ == scores["numeric_rmse"].idxmin()
    assert imputer.categorical_method_ == scores["categorical_error"].idxmin()
    columns = imputer.column_scores_.set_index("column")
    assert list(columns.index) == ["x", "y", "colour"]
    assert columns.loc["x", "method"] == imputer.method_
    assert columns.loc["colour", "method"] == imputer.categorical_method_
    assert (columns["hidden_cells"] > 0).all()
    # y is restored from x far better than by its mean.
    assert columns.loc["y", "error"] < 0.5 * columns.loc["y", "mean_error"]
    assert not columns.loc["y", "no_better_than_mean"]


def test_a_column_restored_no_better_than_its_mean_is_flagged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=200), "noise": rng.normal(size=200)})
    frame["b"] = frame["a"] + 0.1 * rng.normal(size=200)
    with caplog.at_level(logging.WARNING, logger="clusterflow.impute"):
        imputer = TableImputer(random_state=0).fit(frame)
    columns = imputer.column_scores_.set_index("column")
    # Pure noise cannot be restored from the other columns: the chosen method only matches its mean.
    assert columns.loc["noise", "no_better_than_mean"]
    assert "column 'noise'" in caplog.text and "no better than the column's mean" in caplog.text
    assert not columns.loc[["a", "b"], "no_better_than_mean"].any()
    assert "'a'" not in caplog.text and "'b'" not in caplog.text


def test_imputer_names_come_from_the_config_enum() -> None:
    assert set(METHODS) == {m.value for m in ImputeMethod} - {"drop"}
    assert set(CANDIDATES) == set(METHODS) - {"auto"}
    parser = build_parser()
    args = parser.parse_args(["train", "data.csv", "--impute", "forest"])
    assert args.impute == "forest"
    args = parser.parse_args(["impute", "data.csv", "--out", "o.csv", "--method", "forest"])
    assert args.method == "forest"


# TableImputer takes only DataFrames on purpose (column names and dtypes decide the encoding);
# the checks that feed it numpy arrays or lists are expected to fail.
_FRAME_ONLY = "TableImputer accepts pandas DataFrames only (columns decide the encoding)"


def _expected_failures(estimator: object) -> dict[str, str]:
    if not isinstance(estimator, TableImputer):
        return {}
    return {
        name: _FRAME_ONLY
        for name in (
            "check_estimators_dtypes",
            "check_fit_score_takes_y",
            "check_estimators_fit_returns_self",
            "check_pipeline_consistency",
            "check_estimators_overwrite_params",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_preserves_dtypes",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1sample",
            "check_fit2d_1feature",
            "check_fit1d",
            "check_dict_unchanged",
            "check_dont_overwrite_parameters",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
            "check_complex_data",
            "check_dtype_object",
            "check_estimators_empty_data",
            "check_estimators_nan_inf",
            "check_estimator_sparse_array",
            "check_estimator_sparse_matrix",
            "check_estimator_sparse_tag",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_positive_only_tag_during_fit",
            "check_set_output_transform",
            "check_global_output_transform_pandas",
            "check_set_output_transform_pandas",
            "check_global_set_output_transform_polars",
            "check_set_output_transform_polars",
            "check_requires_y_none",
            "check_estimators_empty_data_messages",
            "check_transformer_preserve_dtypes",
            "check_transformer_n_iter",
        )
    }


@parametrize_with_checks(
    [
        _ColumnStatisticImputer(),
        _ColumnStatisticImputer(strategy="median", n_numeric=1),
        _IterativeTableImputer(),
        _IterativeTableImputer(estimator="trees", max_iter=1),
        _MeanImputer(parts=[_ColumnStatisticImputer(), _IterativeTableImputer(max_iter=1)]),
        _MeanImputer(parts=[_ColumnStatisticImputer(), FastKNNImputer()], n_jobs=2),
        TableImputer(method="mean"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_our_estimators_pass_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_a_blend_imputes_the_mean_of_its_parts(mixed: pd.DataFrame) -> None:
    layout = Layout(["x", "y"], [(2, 4)], ["colour"], [np.array(["blue", "red"], dtype=object)])
    encoded = mixed[["x", "y"]].to_numpy(dtype=float)
    colour = pd.get_dummies(mixed["colour"], dtype=float).to_numpy()
    colour[mixed["colour"].isna().to_numpy()] = np.nan
    encoded = np.hstack([encoded, colour])
    settings = Settings(seed=0)
    blend = make_backend("knn+iterative", layout, settings).fit(encoded).transform(encoded)
    parts = [
        make_backend(m, layout, settings).fit(encoded).transform(encoded)
        for m in ("knn", "iterative")
    ]
    np.testing.assert_allclose(blend, (parts[0] + parts[1]) / 2)
    assert not np.isnan(blend).any()


@pytest.mark.parametrize("blend", BLENDS)
def test_each_blend_fills_numerics_and_returns_seen_categories(
    mixed: pd.DataFrame, blend: str, tmp_path
) -> None:
    imputer = TableImputer(method=blend, random_state=0).fit(mixed)
    assert imputer.method_ == blend
    out = imputer.transform(mixed)
    assert not out[["x", "y"]].isna().any().any()
    assert set(out["colour"]) <= {"red", "blue"}
    # It saves and loads like every fitted component of a model.
    dump_component(imputer, tmp_path / "imputer")
    loaded = load_component(tmp_path / "imputer", "skops")
    pd.testing.assert_frame_equal(loaded.transform(mixed), out)


def test_auto_scores_every_blend_and_picks_one_only_when_it_is_strictly_better(
    mixed: pd.DataFrame,
) -> None:
    imputer = TableImputer(random_state=0).fit(mixed)
    scores = imputer.scores_.set_index("method")
    assert list(scores.index) == list(SCORED)
    # A blend's seconds are the sum of its parts' (it fits each of them).
    for blend in BLENDS:
        parts = blend.split("+")
        assert scores.loc[blend, "seconds"] == pytest.approx(scores.loc[parts, "seconds"].sum())
    best = scores["numeric_rmse"].min()
    first_best = scores.index[scores["numeric_rmse"] == best][0]
    assert imputer.method_ == first_best
    if imputer.method_ in BLENDS:
        assert scores.loc[list(CANDIDATES), "numeric_rmse"].min() > best


def test_only_the_listed_blends_are_methods(mixed: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="invalid imputer setting"):
        TableImputer(method="mean+knn").fit(mixed)


def test_thread_map_keeps_the_order_and_runs_side_by_side() -> None:
    seen: set[int] = set()
    # With three threads the items wait for each other, so they pass only side by side (on a
    # starved machine one thread could otherwise take every item); one thread cannot wait.
    together: list[threading.Barrier] = [threading.Barrier(3, timeout=60)]

    def slow_square(x: int) -> int:
        seen.add(threading.get_ident())
        if together:
            together[0].wait()
        time.sleep(0.05 * (3 - x))  # the first item finishes last
        return x * x

    assert _thread_map(slow_square, [0, 1, 2], n_jobs=3) == [0, 1, 4]
    assert len(seen) == 3
    seen.clear()
    together.clear()
    assert _thread_map(slow_square, [0, 1, 2], n_jobs=None) == [0, 1, 4]
    assert seen == {threading.get_ident()}  # None is one thread: the caller's


def test_threads_change_nothing_but_the_time(mixed: pd.DataFrame) -> None:
    """Candidates and blend parts fitted side by side give the serial run's choice and values."""
    serial = TableImputer(random_state=0, n_jobs=1).fit(mixed)
    threaded = TableImputer(random_state=0, n_jobs=3).fit(mixed)
    columns = ["method", "numeric_rmse", "categorical_error", "score"]
    pd.testing.assert_frame_equal(serial.scores_[columns], threaded.scores_[columns])
    assert (threaded.method_, threaded.categorical_method_) == (
        serial.method_,
        serial.categorical_method_,
    )
    pd.testing.assert_frame_equal(threaded.transform(mixed), serial.transform(mixed))
    blend = TableImputer(method="knn+iterative+forest", random_state=0)
    pd.testing.assert_frame_equal(
        blend.set_params(n_jobs=3).fit_transform(mixed),
        blend.set_params(n_jobs=1).fit_transform(mixed),
    )


def test_threaded_fits_leave_blas_threads_as_they_were(mixed: pd.DataFrame) -> None:
    before = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()]
    TableImputer(random_state=0, n_jobs=3).fit(mixed)
    after = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()]
    assert after == before


def test_threads_start_every_candidate_once() -> None:
    assert sorted(_START_ORDER) == sorted(CANDIDATES)


def test_thread_map_passes_the_sklearn_config_and_names_a_failing_item() -> None:
    with config_context(assume_finite=True):
        seen = _thread_map(lambda _: get_config()["assume_finite"], [1, 2], n_jobs=2)
    assert seen == [True, True]

    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError("boom")
        return x

    with pytest.raises(ValueError, match="boom") as info:
        _thread_map(fail_on_two, [1, 2, 3], n_jobs=2)
    assert "while fitting 2 on a worker thread" in info.value.__notes__[0]


def test_threaded_fits_leave_the_warning_filters_alone_and_hide_convergence_notices(
    mixed: pd.DataFrame,
) -> None:
    """catch_warnings is not thread-safe: the worker threads must not install their own."""
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            # max_iter=1 ends before IterativeImputer's tolerance: it would warn.
            TableImputer(method="knn+iterative+forest", max_iter=1, n_jobs=3).fit(mixed)
            TableImputer(max_iter=1, n_jobs=3).fit(mixed)
        inside = list(warnings.filters)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert inside[: len(inside) - len(before)] == [("always", None, Warning, None, 0)]
    assert list(warnings.filters) == before


def test_zero_jobs_is_a_config_error(mixed: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="n_jobs"):
        TableImputer(n_jobs=0).fit(mixed)


@pytest.mark.parametrize("method", ["auto", "knn+iterative"])
def test_imputers_saved_before_n_jobs_existed_still_clone_and_refit(
    mixed: pd.DataFrame, method: str, tmp_path
) -> None:
    imputer = TableImputer(method=method, random_state=0).fit(mixed)
    expected = imputer.transform(mixed)
    # What an older version saved: no n_jobs, on the table imputer nor on a blend (and no
    # shared parts, so the blend is saved as the imputer's own).
    imputer.parts_ = {}
    del imputer.n_jobs
    if isinstance(imputer.imputer_, _MeanImputer):
        del imputer.imputer_.n_jobs
    dump_component(imputer, tmp_path / "imputer")
    loaded = load_component(tmp_path / "imputer", "skops")
    pd.testing.assert_frame_equal(loaded.transform(mixed), expected)
    assert loaded.get_params()["n_jobs"] is None
    assert "TableImputer" in repr(loaded)
    pd.testing.assert_frame_equal(clone(loaded).fit(mixed).transform(mixed), expected)
    if isinstance(loaded.imputer_, _MeanImputer):
        assert clone(loaded.imputer_).n_jobs is None
