"""Column-wise statistics on the encoded matrix (the simple candidates)."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from clusterflow.impute._base import _AcceptsNaN


class _ColumnStatisticImputer(_AcceptsNaN, TransformerMixin, BaseEstimator):
    """Fill each encoded column with one statistic of its observed values.

    Numeric columns get the mean, median or most frequent value (``strategy``); one-hot columns
    always get their observed frequency, so the decoded category is the most frequent one.
    A column without any observed value is filled with 0 (the standardised centre).

    Parameters
    ----------
    strategy : {"mean", "median", "most_frequent"}
        Statistic used for numeric columns.
    n_numeric : int
        The first ``n_numeric`` columns are numeric, the others one-hot.

    Attributes
    ----------
    statistics_ : ndarray of shape (n_features,)
        The fill value of every column.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    _parameter_constraints: dict = {
        "strategy": [StrOptions({"mean", "median", "most_frequent"})],
        "n_numeric": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, *, strategy: str = "mean", n_numeric: int = 0) -> None:
        self.strategy = strategy
        self.n_numeric = n_numeric

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: np.ndarray, y: Any = None) -> _ColumnStatisticImputer:
        """Compute the fill value of every column."""
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
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
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return np.where(np.isnan(X), self.statistics_, X)
