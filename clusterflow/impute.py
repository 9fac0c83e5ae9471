"""Fill the gaps of a mixed table, choosing the imputer by measurement rather than by habit.

Two estimators live here:

- :class:`FastKNNImputer` imputes a numeric matrix from its nearest complete-enough rows. It
  finds candidate donors through a KD-tree in a low-dimensional principal subspace (each row
  placed from its observed values only), re-ranks them with the exact ``nan_euclidean``
  distance that scikit-learn's ``KNNImputer`` uses, and averages the ``n_neighbors`` closest
  donors that observe the column. This keeps ``KNNImputer``'s accuracy at a fraction of its
  time and memory (``KNNImputer`` compares every receiver with every donor, once per column).
- :class:`TableImputer` works on a ``pandas.DataFrame`` with numeric and categorical columns. It
  standardises numerics, one-hot encodes categoricals, imputes with one of
  :data:`IMPUTE_METHODS`, and decodes categoricals back to categories seen in ``fit``. With
  ``method="auto"`` it hides a share of the known values, imputes them with every candidate,
  scores each against the truth and keeps the best (the scores are kept in ``scores_``).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers the class)
from sklearn.impute import IterativeImputer
from sklearn.linear_model import Ridge
from sklearn.neighbors import KDTree
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from clusterflow.errors import ConfigError

IMPUTE_METHODS = ("auto", "mean", "median", "most_frequent", "knn", "iterative")
"""Accepted values of ``TableImputer(method=...)``; ``"auto"`` chooses by mask-and-score."""

CANDIDATES = ("mean", "median", "most_frequent", "knn", "iterative")
"""Methods ``method="auto"`` compares, in order of preference when scores tie."""

# One-hot columns are scaled so that a mismatch on one categorical costs as much squared distance
# as one standard deviation on one numeric (two entries differ by 1/sqrt(2) each).
_ONE_HOT_SCALE = 1.0 / math.sqrt(2.0)
# Categories beyond the most frequent ones share an all-zero one-hot block ("other"): a
# free-text-like column with thousands of values must not become thousands of columns, and a
# rare category is never the best guess for a gap anyway.
_MAX_ONE_HOT = 20
_RERANK_BYTES = 32 * 2**20
# Mask-and-score repeats the masking (with fresh cells) until about this many cells were scored,
# so that selection on a small table is not decided by a handful of cells.
_MIN_SCORED_CELLS = 2000
_MAX_SCORE_ROUNDS = 5

_F = TypeVar("_F", bound=Callable[..., Any])


def _single_threaded_blas(method: _F) -> _F:
    """Run ``method`` with BLAS limited to one thread.

    Every matrix here is skinny (tens of columns). Multi-threaded BLAS gains nothing on such
    products but, on a busy machine, its spinning threads made small SVDs 50-70x slower
    (IterativeImputer on 5,000 x 20: 69 s with default threads, 0.9 s with one, measured on the
    2-core build machine under load).
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Fast KNN on a numeric matrix
# --------------------------------------------------------------------------------------------


def _nan_euclidean_to_candidates(
    receivers: np.ndarray, donors: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Return ``nan_euclidean`` distances from each receiver to its candidate donors.

    Parameters
    ----------
    receivers : ndarray of shape (m, d)
        Rows to impute, NaN where missing.
    donors : ndarray of shape (n, d)
        Donor rows, NaN where missing.
    candidates : ndarray of shape (m, c)
        Donor indices per receiver.

    Returns
    -------
    ndarray of shape (m, c)
        ``sqrt(d / present * sum of squared differences over coordinates present in both)``,
        ``inf`` where no coordinate is present in both (as in ``sklearn.metrics.nan_euclidean``).
    """
    diff = receivers[:, None, :] - donors[candidates]
    present = ~np.isnan(diff)
    np.nan_to_num(diff, copy=False, nan=0.0)
    squared = np.einsum("mcd,mcd->mc", diff, diff)
    count = present.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.sqrt(squared * (receivers.shape[1] / count))
    dist[count == 0] = np.inf
    return dist


class FastKNNImputer(TransformerMixin, BaseEstimator):
    """KNN imputation of a numeric matrix with donors found through a KD-tree.

    For every row with gaps, ``n_candidates`` candidate donors are fetched from a KD-tree built
    on the training rows projected onto their leading principal components (each row's
    coordinates estimated from its observed values, see ``_project``), re-ranked by the
    ``nan_euclidean`` distance on the original values
    (coordinates missing in either row are ignored and the sum rescaled, as in
    ``sklearn.impute.KNNImputer``), and each missing value is the mean of the ``n_neighbors``
    nearest candidates that observe that column. When fewer than ``n_neighbors`` candidates
    observe a column, the search is repeated among the rows that observe it. A row without any
    usable donor (for instance a row with every value missing) gets the column mean.

    The input is expected on comparable scales (standardise first); :class:`TableImputer` does.

    Parameters
    ----------
    n_neighbors : int, default=5
        Donors averaged per missing value (uniform weights).
    n_candidates : int or None, default=None
        Candidates fetched from the tree per row; ``None`` means ``max(6 * n_neighbors, 40)``.
    max_components : int, default=10
        Dimension of the subspace the tree is built in (fewer if the data has fewer columns).
        The tree only proposes candidates; the final distances use every column.
    chunk_size : int, default=2048
        Rows processed at once at most; fewer on wide data, so that the re-ranking arrays
        (``rows * n_candidates * n_features`` floats) stay under about 32 MB each.

    Attributes
    ----------
    fit_X_ : ndarray of shape (n_samples, n_features)
        Training rows (the donors), NaN where missing.
    statistics_ : ndarray of shape (n_features,)
        Column means of the training rows, the fallback value.
    components_ : ndarray of shape (n_features, n_components)
        Leading principal axes of the mean-filled, centred rows: the tree's subspace.
    explained_variance_ : ndarray of shape (n_components,)
        Variance along each axis.
    noise_variance_ : float
        Mean variance of the discarded axes (the probabilistic-PCA noise).
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 5,
        n_candidates: int | None = None,
        max_components: int = 10,
        chunk_size: int = 2048,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_candidates = n_candidates
        self.max_components = max_components
        self.chunk_size = chunk_size

    @_single_threaded_blas
    def fit(self, X: np.ndarray, y: Any = None) -> FastKNNImputer:
        """Store the donors and compute the subspace the KD-tree is built in.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric training rows, NaN where missing.
        y : None
            Ignored.

        Returns
        -------
        FastKNNImputer
            The fitted imputer.
        """
        if self.n_neighbors < 1:
            raise ConfigError(
                f"n_neighbors must be at least 1, got {self.n_neighbors}",
                hint="pass n_neighbors=5 (the default) or another positive integer",
            )
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            # An all-NaN column gets mean 0 (the standardised centre); TableImputer refuses such
            # columns earlier with a ConfigError, so this only guards direct use.
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(X, axis=0)
        self.statistics_ = np.nan_to_num(means, nan=0.0)
        self.fit_X_ = X.copy()
        centred = np.where(np.isnan(X), self.statistics_, X) - self.statistics_
        eigvals, eigvecs = np.linalg.eigh(centred.T @ centred / X.shape[0])
        order = np.argsort(eigvals)[::-1]
        eigvals = np.clip(eigvals[order], 0.0, None)
        n_comp = max(1, min(self.max_components, X.shape[1]))
        vecs = eigvecs[:, order[:n_comp]]
        # eigh's sign is arbitrary; fix it so that fits are reproducible across platforms.
        signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(n_comp)])
        self.components_ = vecs * np.where(signs == 0, 1.0, signs)
        floor = 1e-6 * max(float(eigvals[0]), 1e-12)
        rest = eigvals[n_comp:]
        self.noise_variance_ = max(float(rest.mean()) if rest.size else 0.0, floor)
        self.explained_variance_ = np.maximum(eigvals[:n_comp], floor)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Return the subspace coordinates of rows, estimated from their observed values only.

        Mean-filling a gap would pull the row towards the centre on that axis and bias the
        candidates towards donors near the mean of exactly the column to impute. Instead the
        coordinates are the probabilistic-PCA posterior mean given the observed entries:
        ``(W_o' W_o + s2 * diag(1 / lambda))^-1 W_o' x_o``.
        """
        observed = ~np.isnan(X)
        centred = np.where(observed, X - self.statistics_, 0.0)
        W = self.components_
        rhs = centred @ W
        outer = (W[:, :, None] * W[:, None, :]).reshape(W.shape[0], -1)
        gram = (observed.astype(np.float64) @ outer).reshape(-1, W.shape[1], W.shape[1])
        idx = np.arange(W.shape[1])
        gram[:, idx, idx] += self.noise_variance_ / self.explained_variance_
        return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]

    @_single_threaded_blas
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Fill the NaN entries of ``X`` from the nearest training rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to impute, NaN where missing.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            A copy of ``X`` without NaN.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, dtype=np.float64, ensure_all_finite="allow-nan", copy=True, reset=False
        )
        missing = np.isnan(X)
        rows = np.flatnonzero(missing.any(axis=1))
        if rows.size == 0:
            return X
        source = X.copy()
        donors = self.fit_X_
        donor_observed = ~np.isnan(donors)
        # Columns observed by exactly the same donors (a one-hot block, measurements taken
        # together) share their donor search.
        _, group_of = np.unique(donor_observed.T, axis=0, return_inverse=True)
        group_of = group_of.ravel()
        k = self.n_neighbors
        n_cand = min(donors.shape[0], self._n_candidates())
        tree = KDTree(self._project(donors))
        short: dict[int, list[np.ndarray]] = {}
        step = max(16, min(self.chunk_size, _RERANK_BYTES // (8 * n_cand * X.shape[1])))
        for start in range(0, rows.size, step):
            chunk = rows[start : start + step]
            recv = source[chunk]
            cand = tree.query(self._project(recv), k=n_cand, return_distance=False)
            cand, usable = self._rerank(recv, donors, cand)
            gaps = missing[chunk]
            for group in np.unique(group_of[gaps.any(axis=0)]):
                columns = np.flatnonzero(group_of == group)
                need = gaps[:, columns].any(axis=1)
                valid = donor_observed[cand[need], columns[0]] & usable[need]
                take = valid & (np.cumsum(valid, axis=1) <= k)
                n_taken = take.sum(axis=1)
                enough = n_taken >= k
                where = chunk[need]
                for j in columns:
                    fill = enough & missing[where, j]
                    values = np.where(take[fill], donors[cand[need][fill], j], 0.0).sum(axis=1)
                    X[where[fill], j] = values / k
                if not enough.all():
                    short.setdefault(int(group), []).append(where[~enough])
        for group, parts in short.items():
            self._search_group(X, source, np.concatenate(parts), np.flatnonzero(group_of == group))
        return X

    def _n_candidates(self) -> int:
        return self.n_candidates or max(6 * self.n_neighbors, 40)

    @staticmethod
    def _rerank(
        receivers: np.ndarray, donors: np.ndarray, cand: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sort candidates by exact ``nan_euclidean`` distance; flag those with any overlap."""
        dist = _nan_euclidean_to_candidates(receivers, donors, cand)
        order = np.argsort(dist, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        usable = np.isfinite(np.take_along_axis(dist, order, axis=1))
        return cand, usable

    def _search_group(
        self, X: np.ndarray, source: np.ndarray, rows: np.ndarray, columns: np.ndarray
    ) -> None:
        """Fill ``columns`` of ``rows`` searching only the donors that observe them.

        The fallback for receivers whose candidates rarely observe these columns (a column
        missing in most rows). Fewer than ``n_neighbors`` such donors are all used; none, or
        no overlap with the receiver, leaves the column mean.
        """
        observed = np.flatnonzero(~np.isnan(self.fit_X_[:, columns[0]]))
        receivers = source[rows]
        if observed.size == 0:
            fallback = np.broadcast_to(self.statistics_[columns], (rows.size, columns.size))
            X[rows[:, None], columns] = np.where(
                np.isnan(receivers[:, columns]), fallback, X[rows[:, None], columns]
            )
            return
        donors = self.fit_X_[observed]
        n_cand = min(observed.size, self._n_candidates())
        tree = KDTree(self._project(donors))
        cand = tree.query(self._project(receivers), k=n_cand, return_distance=False)
        cand, usable = self._rerank(receivers, donors, cand)
        cand, usable = cand[:, : self.n_neighbors], usable[:, : self.n_neighbors]
        n_used = usable.sum(axis=1)
        for j in columns:
            gap = np.isnan(receivers[:, j])
            values = np.where(usable[gap], donors[cand[gap], j], 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                X[rows[gap], j] = np.where(
                    n_used[gap] > 0, values / n_used[gap], self.statistics_[j]
                )


# --------------------------------------------------------------------------------------------
# Column-wise statistics on the encoded matrix
# --------------------------------------------------------------------------------------------


class _ColumnStatisticImputer(TransformerMixin, BaseEstimator):
    """Fill each encoded column with one statistic of its observed values.

    Numeric columns get the mean, median or most frequent value (``strategy``); one-hot columns
    always get their observed frequency, so the decoded category is the most frequent one.

    Parameters
    ----------
    strategy : {"mean", "median", "most_frequent"}
        Statistic used for numeric columns.
    n_numeric : int
        The first ``n_numeric`` columns are numeric, the others one-hot.
    """

    def __init__(self, *, strategy: str = "mean", n_numeric: int = 0) -> None:
        self.strategy = strategy
        self.n_numeric = n_numeric

    def fit(self, X: np.ndarray, y: Any = None) -> _ColumnStatisticImputer:
        """Compute the fill value of every column."""
        X = np.asarray(X, dtype=np.float64)
        stats = np.zeros(X.shape[1])
        for j in range(X.shape[1]):
            col = X[:, j]
            col = col[~np.isnan(col)]
            if col.size == 0:
                continue
            if j >= self.n_numeric or self.strategy == "mean":
                stats[j] = col.mean()
            elif self.strategy == "median":
                stats[j] = np.median(col)
            else:
                values, counts = np.unique(col, return_counts=True)
                stats[j] = values[np.argmax(counts)]
        self.statistics_ = stats
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return a copy of ``X`` with NaN replaced by the column statistics."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        return np.where(np.isnan(X), self.statistics_, X)


class _IterativeTableImputer(TransformerMixin, BaseEstimator):
    """MICE for the numerics, then a regression per categorical block and per complete numeric.

    scikit-learn's ``IterativeImputer`` would impute every one-hot column from all the others.
    A one-hot column is an exact linear function of its siblings (they sum to a constant), and
    when a category is missing its siblings are missing too, so the chained regressions keep
    returning the column mean: the category never moves from the prior. It would also run one
    regression per one-hot column per round, which dominates the time with many categories.

    So the one-hot blocks enter ``IterativeImputer`` (Bayesian ridge, posterior means,
    ``skip_complete=True``) only as predictors, pre-filled with the category frequencies, and
    it imputes the numerics that have gaps. Then each categorical block is predicted as a whole
    by a multi-output ridge regression on the other, completed columns, and so is every numeric
    that had no gap in ``fit`` (``IterativeImputer`` would fill its later gaps with the mean).

    Parameters
    ----------
    blocks : sequence of (int, int)
        ``(start, stop)`` column ranges of the one-hot blocks; columns before the first block
        are numeric.
    max_iter : int
        Rounds of ``IterativeImputer``.
    random_state : int
        Seed of ``IterativeImputer``.
    """

    def __init__(
        self, *, blocks: Sequence[tuple[int, int]] = (), max_iter: int = 10, random_state: int = 0
    ) -> None:
        self.blocks = blocks
        self.max_iter = max_iter
        self.random_state = random_state

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

    @_single_threaded_blas
    def fit(self, X: np.ndarray, y: Any = None) -> _IterativeTableImputer:
        """Fit the chained regressions, then the block and complete-column regressions."""
        X = np.asarray(X, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing block: mean 0
            self.block_means_ = [
                np.nan_to_num(np.nanmean(X[:, a:b], axis=0)) for a, b in self.blocks
            ]
        self.iterative_ = IterativeImputer(
            max_iter=self.max_iter,
            random_state=self.random_state,
            keep_empty_features=True,
            skip_complete=True,
        )
        with warnings.catch_warnings():
            # max_iter may end before IterativeImputer's tolerance; the result is still a valid
            # imputation, and mask-and-score measures its quality directly.
            warnings.simplefilter("ignore", ConvergenceWarning)
            completed = self.iterative_.fit_transform(self._prefill_blocks(X))
        self.group_models_ = []
        for start, stop, is_block in self._groups(X.shape[1]):
            known = ~np.isnan(X[:, start])
            if (not is_block and not known.all()) or known.sum() < 2:
                # Numerics with gaps in fit are IterativeImputer's job.
                self.group_models_.append(None)
                continue
            others = np.delete(completed[known], np.s_[start:stop], axis=1)
            self.group_models_.append(Ridge(alpha=1.0).fit(others, X[known, start:stop]))
        return self

    @_single_threaded_blas
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Impute numerics by MICE, then each remaining gap from the completed other columns."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            completed = self.iterative_.transform(self._prefill_blocks(X))
        out = completed.copy()
        groups = self._groups(X.shape[1])
        for (start, stop, _), model in zip(groups, self.group_models_, strict=True):
            gaps = np.isnan(X[:, start])
            if model is None or not gaps.any():
                continue
            others = np.delete(completed[gaps], np.s_[start:stop], axis=1)
            out[np.ix_(gaps, np.arange(start, stop))] = model.predict(others).reshape(
                -1, stop - start
            )
        return out


def _make_backend(
    method: str,
    *,
    n_numeric: int,
    blocks: Sequence[tuple[int, int]],
    n_neighbors: int,
    max_iter: int,
    seed: int,
) -> Any:
    """Return an unfitted imputer of the encoded matrix for ``method``."""
    if method in ("mean", "median", "most_frequent"):
        return _ColumnStatisticImputer(strategy=method, n_numeric=n_numeric)
    if method == "knn":
        return FastKNNImputer(n_neighbors=n_neighbors)
    if method == "iterative":
        return _IterativeTableImputer(blocks=list(blocks), max_iter=max_iter, random_state=seed)
    raise ConfigError(
        f"unknown imputation method {method!r}",
        hint=f"choose one of {', '.join(IMPUTE_METHODS)}",
    )


# --------------------------------------------------------------------------------------------
# The table imputer
# --------------------------------------------------------------------------------------------


class TableImputer(TransformerMixin, BaseEstimator):
    """Impute numeric and categorical columns of a table, choosing the method by mask-and-score.

    Numeric columns are standardised and categorical columns one-hot encoded (a missing category
    makes its whole block missing); the chosen method imputes this matrix, and each categorical
    is decoded to the category with the largest imputed indicator, so it always comes back as a
    category seen in ``fit``.

    With ``method="auto"``, ``fit`` takes up to ``score_sample`` rows, hides ``mask_fraction`` of
    their known values (seeded), imputes them with every method of :data:`CANDIDATES` and scores
    the result against the hidden truth: RMSE on standardised numerics, error rate on
    categoricals, combined as their average weighted by the number of hidden cells of each kind
    (lower is better). The mean, median, most-frequent and iterative candidates are fitted on
    the sample; the KNN candidate uses every row as donor, as it will at full scale, because its
    fit only stores rows. On small tables the masking is repeated with fresh cells (up to five
    rounds) until about 2,000 cells were scored.

    Parameters
    ----------
    method : {"auto", "mean", "median", "most_frequent", "knn", "iterative"}, default="auto"
        Imputation method; ``"knn"`` is :class:`FastKNNImputer`, ``"iterative"`` is
        scikit-learn's ``IterativeImputer`` (MICE with Bayesian ridge, posterior means).
    numeric_columns, categorical_columns : sequence of str or None, default=None
        Columns to impute. If both are None they are inferred: numeric dtypes (not bool) are
        numeric, every other column categorical. If one is given and the other None, the other
        is empty. Columns in neither list pass through untouched.
    n_neighbors : int, default=5
        Donors per missing value for ``"knn"``.
    max_iter : int, default=10
        Rounds of ``"iterative"``.
    mask_fraction : float, default=0.1
        Share of known values hidden to score candidates.
    score_sample : int, default=5000
        Rows used to score candidates.
    random_state : int, default=0
        Seed of the masking, the sample and the iterative imputer.

    Attributes
    ----------
    method_ : str
        The method used by ``transform``.
    scores_ : pandas.DataFrame
        One row per candidate: ``method``, ``numeric_rmse``, ``categorical_error``, ``score``,
        ``seconds`` (summed over masking rounds); no rows when ``method`` is not ``"auto"``.
    score_records_ : list of dict
        The same, as plain records (what is serialised).
    numeric_columns_, categorical_columns_ : list of str
        Columns imputed.
    categories_ : dict of str to list
        Categories of each categorical column seen in ``fit``.
    encoded_categories_ : dict of str to list
        The (at most 20) most frequent of them, one-hot encoded and used to fill gaps; the
        others share an all-zero "other" code.
    means_, scales_ : ndarray
        Standardisation of the numeric columns.
    imputer_ : estimator
        The fitted imputer of the encoded matrix.
    feature_names_in_ : ndarray of str
        Columns of the frame seen in ``fit``.
    """

    def __init__(
        self,
        *,
        method: str = "auto",
        numeric_columns: Sequence[str] | None = None,
        categorical_columns: Sequence[str] | None = None,
        n_neighbors: int = 5,
        max_iter: int = 10,
        mask_fraction: float = 0.1,
        score_sample: int = 5000,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.numeric_columns = numeric_columns
        self.categorical_columns = categorical_columns
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.mask_fraction = mask_fraction
        self.score_sample = score_sample
        self.random_state = random_state

    # ---- validation and encoding ---------------------------------------------------------

    def _validate_params(self, X: pd.DataFrame) -> tuple[list[str], list[str]]:
        if not isinstance(X, pd.DataFrame):
            raise ConfigError(
                f"TableImputer needs a pandas DataFrame, got {type(X).__name__}",
                hint="wrap the data in pandas.DataFrame with column names",
            )
        if self.method not in IMPUTE_METHODS:
            raise ConfigError(
                f"unknown imputation method {self.method!r}",
                hint=f"choose one of {', '.join(IMPUTE_METHODS)}",
            )
        if not 0.0 < self.mask_fraction < 1.0:
            raise ConfigError(
                f"mask_fraction must lie strictly between 0 and 1, got {self.mask_fraction}",
                hint="use a share such as 0.1 (the default)",
            )
        if self.score_sample < 1 or self.n_neighbors < 1 or self.max_iter < 1:
            raise ConfigError(
                "score_sample, n_neighbors and max_iter must be positive, got "
                f"{self.score_sample}, {self.n_neighbors}, {self.max_iter}",
                hint="use the defaults 5000, 5 and 10",
            )
        if self.numeric_columns is None and self.categorical_columns is None:
            numeric, categorical = [], []
            for name in X.columns:
                dtype = X[name].dtype
                is_num = pd.api.types.is_numeric_dtype(dtype)
                if is_num and not pd.api.types.is_bool_dtype(dtype):
                    numeric.append(name)
                else:
                    categorical.append(name)
        else:
            numeric = list(self.numeric_columns or [])
            categorical = list(self.categorical_columns or [])
        unknown = [c for c in [*numeric, *categorical] if c not in X.columns]
        if unknown:
            raise ConfigError(
                f"columns {unknown} to impute are not in the data (columns: {list(X.columns)})",
                hint="fix numeric_columns / categorical_columns or the input file",
            )
        both = sorted(set(numeric) & set(categorical))
        if both:
            raise ConfigError(
                f"columns {both} are listed as both numeric and categorical",
                hint="list each column in only one of numeric_columns and categorical_columns",
            )
        empty = [c for c in [*numeric, *categorical] if X[c].isna().all()]
        if empty:
            raise ConfigError(
                f"column(s) {empty} are entirely missing, nothing to impute them from",
                hint="drop them or list them in --exclude-columns",
            )
        return numeric, categorical

    def _numeric_block(self, X: pd.DataFrame) -> np.ndarray:
        if not self.numeric_columns_:
            return np.empty((len(X), 0))
        try:
            numeric = X[self.numeric_columns_].apply(pd.to_numeric)
            return numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"numeric columns {self.numeric_columns_} hold values that are not numbers: {err}",
                hint="list such columns as categorical_columns or clean the values",
            ) from err

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        """Standardise numerics and one-hot encode categoricals (NaN blocks where missing)."""
        blocks = [(self._numeric_block(X) - self.means_) / self.scales_]
        for name in self.categorical_columns_:
            col = X[name]
            cats = self.encoded_categories_[name]
            codes = pd.Categorical(col, categories=cats).codes
            onehot = np.zeros((len(X), len(cats)))
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = _ONE_HOT_SCALE
            # A rare category, or one unseen in fit, is an all-zero block: known, "other".
            onehot[col.isna().to_numpy()] = np.nan
            blocks.append(onehot)
        return np.hstack(blocks)

    def _decode_into(self, out: pd.DataFrame, X: pd.DataFrame, filled: np.ndarray) -> None:
        """Write imputed values into the gaps of ``out`` (a copy of ``X``)."""
        n_num = len(self.numeric_columns_)
        if n_num:
            numeric = self._numeric_block(X)
            restored = filled[:, :n_num] * self.scales_ + self.means_
            numeric = np.where(np.isnan(numeric), restored, numeric)
            for i, name in enumerate(self.numeric_columns_):
                out[name] = pd.Series(numeric[:, i], index=out.index, dtype=np.float64)
        start = n_num
        for name in self.categorical_columns_:
            cats = self.encoded_categories_[name]
            block = filled[:, start : start + len(cats)]
            start += len(cats)
            gaps = X[name].isna().to_numpy()
            values = X[name].astype(object).to_numpy(copy=True)
            if gaps.any():
                choice = np.argmax(block[gaps], axis=1)
                values[gaps] = np.asarray(cats, dtype=object)[choice]
            out[name] = pd.Series(values, index=out.index, dtype=object)

    def _blocks(self) -> list[tuple[int, int]]:
        """Return the ``(start, stop)`` columns of each categorical's one-hot block."""
        blocks, start = [], len(self.numeric_columns_)
        for name in self.categorical_columns_:
            stop = start + len(self.encoded_categories_[name])
            blocks.append((start, stop))
            start = stop
        return blocks

    # ---- mask and score ------------------------------------------------------------------

    def _score_candidates(self, X: pd.DataFrame, encoded: np.ndarray) -> list[dict[str, Any]]:
        rng = np.random.default_rng(self.random_state)
        n_num = len(self.numeric_columns_)
        # Column groups of the encoded matrix: each numeric is one column, each categorical a block.
        groups = [slice(i, i + 1) for i in range(n_num)] + [slice(a, b) for a, b in self._blocks()]
        observed = np.zeros((len(X), len(groups)), dtype=bool)
        for g, columns in enumerate(groups):
            observed[:, g] = ~np.isnan(encoded[:, columns.start])
        n_rows = len(X)
        sample = np.sort(rng.choice(n_rows, size=min(self.score_sample, n_rows), replace=False))
        known = np.argwhere(observed[sample])
        per_round = int(round(self.mask_fraction * len(known)))
        rounds = 0 if per_round == 0 else min(_MAX_SCORE_ROUNDS, -(-_MIN_SCORED_CELLS // per_round))
        totals = {m: {"sq": 0.0, "n_num": 0, "err": 0, "n_cat": 0, "sec": 0.0} for m in CANDIDATES}
        blocks = self._blocks()
        for _ in range(rounds):
            hide = known[rng.choice(len(known), size=per_round, replace=False)]
            masked = encoded.copy()
            hidden_rows = [hide[hide[:, 1] == g, 0] for g in range(len(groups))]
            for g, rows in enumerate(hidden_rows):
                masked[np.ix_(sample[rows], np.arange(groups[g].start, groups[g].stop))] = np.nan
            num_rows, num_cols = hide[hide[:, 1] < n_num].T
            for method in CANDIDATES:
                backend = _make_backend(
                    method,
                    n_numeric=n_num,
                    blocks=blocks,
                    n_neighbors=self.n_neighbors,
                    max_iter=self.max_iter,
                    seed=self.random_state,
                )
                fit_rows = masked if method == "knn" else masked[sample]
                tic = time.perf_counter()
                filled = backend.fit(fit_rows).transform(masked[sample])
                totals[method]["sec"] += time.perf_counter() - tic
                error = filled[num_rows, num_cols] - encoded[sample[num_rows], num_cols]
                totals[method]["sq"] += float(error @ error)
                totals[method]["n_num"] += len(num_rows)
                for (start, stop), name, rows in zip(
                    blocks, self.categorical_columns_, hidden_rows[n_num:], strict=True
                ):
                    # Compare categories, not codes: a rare true category has no code of its own.
                    cats = np.asarray(self.encoded_categories_[name], dtype=object)
                    guess = cats[np.argmax(filled[rows, start:stop], axis=1)]
                    truth = X[name].to_numpy(dtype=object)[sample[rows]]
                    totals[method]["err"] += int((guess != truth).sum())
                    totals[method]["n_cat"] += len(rows)
        rows = []
        for method in CANDIDATES:
            t = totals[method]
            rmse = math.sqrt(t["sq"] / t["n_num"]) if t["n_num"] else math.nan
            err = t["err"] / t["n_cat"] if t["n_cat"] else math.nan
            cells = t["n_num"] + t["n_cat"]
            if cells:
                score = (
                    (rmse * t["n_num"] if t["n_num"] else 0.0)
                    + (err * t["n_cat"] if t["n_cat"] else 0.0)
                ) / cells
            else:
                score = math.nan
            rows.append(
                {
                    "method": method,
                    "numeric_rmse": float(rmse),
                    "categorical_error": float(err),
                    "score": float(score),
                    "seconds": float(t["sec"]),
                }
            )
        return rows

    # ---- estimator API -------------------------------------------------------------------

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """Return the output column names: the input columns, unchanged and in order."""
        check_is_fitted(self)
        return self.feature_names_in_.copy()

    @property
    def scores_(self) -> pd.DataFrame:
        """Mask-and-score results, one row per candidate (empty unless ``method="auto"``).

        Kept as plain records in ``score_records_`` so the fitted imputer serialises with
        ``skops.io`` (a DataFrame holds pandas internals skops refuses).
        """
        check_is_fitted(self)
        return pd.DataFrame(
            self.score_records_,
            columns=["method", "numeric_rmse", "categorical_error", "score", "seconds"],
        )

    @_single_threaded_blas
    def fit(self, X: pd.DataFrame, y: Any = None) -> TableImputer:
        """Learn the encoding, choose the method (if ``"auto"``) and fit it on ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Training table, NaN/None where missing. Not modified.
        y : None
            Ignored.

        Returns
        -------
        TableImputer
            The fitted imputer.

        Raises
        ------
        ConfigError
            If a column to impute is absent, entirely missing, or a numeric one holds text,
            or a parameter is out of range.
        """
        numeric, categorical = self._validate_params(X)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.categories_ = {
            name: sorted(X[name].dropna().unique().tolist(), key=str) for name in categorical
        }
        self.encoded_categories_ = {}
        for name in categorical:
            counts = X[name].value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
            top = [value for value, _ in ranked[:_MAX_ONE_HOT]]
            self.encoded_categories_[name] = sorted(top, key=str)
        numeric_values = self._numeric_block(X)
        self.means_ = np.nanmean(numeric_values, axis=0) if numeric else np.empty(0)
        scales = np.nanstd(numeric_values, axis=0) if numeric else np.empty(0)
        self.scales_ = np.where(np.isfinite(scales) & (scales > 0), scales, 1.0)
        encoded = self._encode(X)
        if self.method == "auto":
            self.score_records_ = self._score_candidates(X, encoded)
            scored = [r for r in self.score_records_ if not math.isnan(r["score"])]
            # min keeps the first of equal scores, so ties go to the simpler method; with nothing
            # to hide (no known values) the cheapest candidate is kept.
            self.method_ = min(scored, key=lambda r: r["score"])["method"] if scored else "mean"
        else:
            self.score_records_ = []
            self.method_ = self.method
        self.imputer_ = _make_backend(
            # With no column to impute there is nothing to learn; the trivial imputer keeps
            # transform uniform (and KNN/MICE would reject a matrix without columns).
            self.method_ if encoded.shape[1] else "mean",
            n_numeric=len(numeric),
            blocks=self._blocks(),
            n_neighbors=self.n_neighbors,
            max_iter=self.max_iter,
            seed=self.random_state,
        )
        self.imputer_.fit(encoded)
        return self

    @_single_threaded_blas
    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return a copy of ``X`` with the gaps of the imputed columns filled.

        Parameters
        ----------
        X : pandas.DataFrame
            Table with at least the columns imputed in ``fit``. Not modified.

        Returns
        -------
        pandas.DataFrame
            Same index, columns and column order as ``X``; numeric columns float64 without
            NaN, categorical columns of object dtype holding categories seen in ``fit`` where
            they were missing. Other columns are unchanged.

        Raises
        ------
        ConfigError
            If a column imputed in ``fit`` is absent from ``X`` or a numeric one holds text.
        """
        check_is_fitted(self)
        if not isinstance(X, pd.DataFrame):
            raise ConfigError(
                f"TableImputer needs a pandas DataFrame, got {type(X).__name__}",
                hint="wrap the data in pandas.DataFrame with the training column names",
            )
        absent = [c for c in [*self.numeric_columns_, *self.categorical_columns_] if c not in X]
        if absent:
            raise ConfigError(
                f"columns {absent} seen in fit are missing from the data to impute",
                hint="impute data with the same columns as the training data",
            )
        out = X.copy()
        if len(X) == 0:
            return out
        encoded = self._encode(X)
        if np.isnan(encoded).any():
            filled = self.imputer_.transform(encoded)
        else:
            filled = encoded
        self._decode_into(out, X, filled)
        return out
