"""Chained-equation imputation of the encoded matrix: linear (MICE) or with extra-trees."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers the class)
from sklearn.impute import IterativeImputer
from sklearn.linear_model import Ridge
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from clusterflow.impute._base import (
    _AcceptsNaN,
    _nan_means,
    _quiet_convergence,
    _single_threaded_blas,
)

# Bounds of the tree variant, so that its cost stays flat on large tables: the chained trees
# are fitted on at most this many rows, with few trees and fewer rounds (trees do not converge
# the way posterior means do). Two rounds restore the hidden cells as well as three, and 60% of
# the columns per split was chosen leave-one-table-out (benchmarks/impute_forest.py: 8 of 9
# folds, held-out RMSE ratio 0.995 against all columns, at 0.77x the time), and so was the tree
# count: the fewest within 1% of 20 trees on the other tables, 15 in all 9 folds (held-out
# ratio 1.006), for a cheaper selection (auto's 54 cases: 51 within 1.02x either way).
_TREE_FIT_ROWS = 2000
_TREE_COUNT = 15
_TREE_MIN_LEAF = 2
_TREE_MAX_FEATURES = 0.6
_TREE_MAX_ITER = 2


class _IterativeTableImputer(_AcceptsNaN, TransformerMixin, BaseEstimator):
    """Chained equations for the numerics, then a model per categorical block and complete numeric.

    scikit-learn's ``IterativeImputer`` would impute every one-hot column from all the others.
    A one-hot column is an exact linear function of its siblings (they sum to a constant), and
    when a category is missing its siblings are missing too, so the chained regressions keep
    returning the column mean: the category never moves from the prior. It would also run one
    regression per one-hot column per round, which dominates the time with many categories.

    So the one-hot blocks enter ``IterativeImputer`` (``skip_complete=True``) only as
    predictors, pre-filled with the category frequencies, and it imputes the numerics that have
    gaps. Then each categorical block is predicted as a whole by a multi-output model of the
    other, completed columns, and so is every numeric that had no gap in ``fit``
    (``IterativeImputer`` would fill its later gaps with the mean).

    With ``estimator="linear"`` the chained models are Bayesian ridge regressions (posterior
    means) and the block models ridge regressions: MICE. With ``estimator="trees"`` both are
    extra-trees ensembles (MissForest-style): nonlinear relations and interactions, at a cost
    bounded by fitting on a sample of at most 2,000 rows, 15 trees, 2 rounds and 60% of the
    columns per split.

    Parameters
    ----------
    blocks : sequence of (int, int)
        ``(start, stop)`` column ranges of the one-hot blocks; columns before the first block
        are numeric.
    max_iter : int
        Rounds of ``IterativeImputer`` (at most 2 with trees).
    random_state : int
        Seed of ``IterativeImputer``, of the trees and of the fitting sample.
    estimator : {"linear", "trees"}
        The chained and block models.

    Attributes
    ----------
    iterative_ : IterativeImputer
        The fitted chained equations.
    group_models_ : list
        One fitted model or None per numeric column and categorical block.
    block_means_ : list of ndarray
        Category frequencies of each block, its pre-fill.
    n_iter_ : int
        Rounds ``IterativeImputer`` ran.
    n_fit_rows_ : int
        Rows the models were fitted on (a sample of at most 2,000 with trees).
    bounds_ : ndarray of shape (2, n_features)
        The smallest and largest known value of each column in ``fit`` (-inf / inf for a column
        with none). Every imputed value is clipped to them: a linear model extrapolates (on the
        birds strikes it gave a height of -734 ft where the known heights run from 0 to
        14,000), and a value beyond the range seen in training is never more plausible than its
        edge.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    _parameter_constraints: dict = {
        "blocks": ["array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "estimator": [StrOptions({"linear", "trees"})],
    }

    def __init__(
        self,
        *,
        blocks: Sequence[tuple[int, int]] = (),
        max_iter: int = 10,
        random_state: int = 0,
        estimator: str = "linear",
    ) -> None:
        self.blocks = blocks
        self.max_iter = max_iter
        self.random_state = random_state
        self.estimator = estimator

    def _prefill_blocks(self, X: np.ndarray) -> np.ndarray:
        out = X.copy()
        for (start, stop), freq in zip(self.blocks, self.block_means_, strict=True):
            gaps = np.isnan(out[:, start])
            out[np.ix_(gaps, np.arange(start, stop))] = freq
        return out

    def _groups(self, n_columns: int) -> list[tuple[int, int, bool]]:
        """Return ``(start, stop, is_block)`` for every numeric column and categorical block."""
        n_numeric = self.blocks[0][0] if self.blocks else n_columns
        numeric = [(j, j + 1, False) for j in range(n_numeric)]
        return numeric + [(a, b, True) for a, b in self.blocks]

    def _trees(self) -> ExtraTreesRegressor:
        return ExtraTreesRegressor(
            n_estimators=_TREE_COUNT,
            min_samples_leaf=_TREE_MIN_LEAF,
            max_features=_TREE_MAX_FEATURES,
            # One thread per ensemble: with the candidates already side by side, threads per
            # tree added GIL contention (scoring at 100k x 20: 5.0 s against 3.8 s).
            n_jobs=1,
            random_state=self.random_state,
        )

    def _chained(self) -> IterativeImputer:
        low, high = self.bounds_
        # IterativeImputer wants low < high; a constant column is predicted as its constant.
        constant = low >= high
        low, high = np.where(constant, -np.inf, low), np.where(constant, np.inf, high)
        if self.estimator == "linear":
            return IterativeImputer(
                max_iter=self.max_iter,
                random_state=self.random_state,
                keep_empty_features=True,
                skip_complete=True,
                min_value=low,
                max_value=high,
            )
        return IterativeImputer(
            estimator=self._trees(),
            max_iter=min(self.max_iter, _TREE_MAX_ITER),
            random_state=self.random_state,
            keep_empty_features=True,
            skip_complete=True,
            min_value=low,
            max_value=high,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    @_single_threaded_blas
    def fit(self, X: np.ndarray, y: Any = None) -> _IterativeTableImputer:
        """Fit the chained models, then the block and complete-column models."""
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        known = ~np.isnan(X)
        low = np.where(known, X, np.inf).min(axis=0)
        high = np.where(known, X, -np.inf).max(axis=0)
        self.bounds_ = np.vstack(
            [np.where(np.isfinite(low), low, -np.inf), np.where(np.isfinite(high), high, np.inf)]
        )
        if self.estimator == "trees" and X.shape[0] > _TREE_FIT_ROWS:
            rng = np.random.default_rng(self.random_state)
            X = X[np.sort(rng.choice(X.shape[0], size=_TREE_FIT_ROWS, replace=False))]
        self.n_fit_rows_ = X.shape[0]
        # An all-missing block gets frequencies 0.
        self.block_means_ = [_nan_means(X[:, a:b]) for a, b in self.blocks]
        self.iterative_ = self._chained()
        with _quiet_convergence():
            completed = self.iterative_.fit_transform(self._prefill_blocks(X))
        self.n_iter_ = self.iterative_.n_iter_
        self.group_models_: list[Any] = []
        for start, stop, is_block in self._groups(X.shape[1]):
            known = ~np.isnan(X[:, start])
            if (not is_block and not known.all()) or known.sum() < 2 or stop - start == X.shape[1]:
                # Numerics with gaps in fit are IterativeImputer's job; a lone column has no
                # other column to be predicted from (its later gaps get the column mean).
                self.group_models_.append(None)
                continue
            others = np.delete(completed[known], np.s_[start:stop], axis=1)
            model = Ridge(alpha=1.0) if self.estimator == "linear" else self._trees()
            target = X[known, start:stop]
            # Ridge keeps the 2-D target it always had; a forest wants 1-D for a single column.
            flat = not is_block and self.estimator == "trees"
            self.group_models_.append(model.fit(others, target.ravel() if flat else target))
        return self

    @_single_threaded_blas
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Impute numerics by chained equations, then each remaining gap from the other columns."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        with _quiet_convergence():
            completed = self.iterative_.transform(self._prefill_blocks(X))
        out = completed.copy()
        groups = self._groups(X.shape[1])
        # Imputers saved before the bounds existed transform as they were fitted: unclipped.
        bounds = getattr(self, "bounds_", None)
        for (start, stop, is_block), model in zip(groups, self.group_models_, strict=True):
            gaps = np.isnan(X[:, start])
            if model is None or not gaps.any():
                continue
            others = np.delete(completed[gaps], np.s_[start:stop], axis=1)
            predicted = model.predict(others).reshape(-1, stop - start)
            # Numerics only: a block's scores are decoded by argmax, and clipping them to the
            # one-hot range [0, 1] would turn a clear winner into a tie.
            if bounds is not None and not is_block:
                predicted = np.clip(predicted, bounds[0, start:stop], bounds[1, start:stop])
            out[np.ix_(gaps, np.arange(start, stop))] = predicted
        return out
