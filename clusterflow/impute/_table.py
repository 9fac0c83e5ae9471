"""The table imputer: encode a mixed table, impute it with the method that scores best, decode."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted

from clusterflow.config import ImputeMethod
from clusterflow.errors import ConfigError
from clusterflow.impute._base import _single_threaded_blas
from clusterflow.impute._encoding import (
    decode_category,
    encoded_categories,
    infer_columns,
    numeric_block,
    one_hot,
)
from clusterflow.impute._selection import (
    BLENDS,
    Layout,
    Settings,
    _best,
    assemble,
    fit_parts,
    impute_with,
    make_backend,
    mask_and_score,
)

log = logging.getLogger(__name__)

METHODS = tuple(m.value for m in ImputeMethod if m is not ImputeMethod.drop)
"""The named methods of ``TableImputer(method=...)``: the config's ``ImputeMethod`` less ``drop``
(which the pipeline handles by quarantining rows, not by filling them). A blend of ``BLENDS``
(``"knn+forest"``) is accepted too; ``"auto"`` may choose one."""

_SCORE_COLUMNS = ["method", "numeric_rmse", "categorical_error", "score", "seconds"]
_COLUMN_SCORE_COLUMNS = [
    "column",
    "kind",
    "hidden_cells",
    "method",
    "error",
    "mean_error",
    "no_better_than_mean",
]


class TableImputer(TransformerMixin, BaseEstimator):
    """Impute numeric and categorical columns of a table, choosing the method by mask-and-score.

    Numeric columns are standardised and categorical columns one-hot encoded (a missing category
    makes its whole block missing); the chosen method imputes this matrix, and each categorical
    is decoded to the category with the largest imputed indicator, so it always comes back as a
    category seen in ``fit``.

    With ``method="auto"``, ``fit`` takes up to ``score_sample`` rows, hides ``mask_fraction`` of
    their known values (seeded), imputes them with every method of ``CANDIDATES`` and with the
    averages of the model-based ones (``BLENDS``: knn, iterative and forest in pairs and all three),
    and scores the result against the hidden truth: RMSE on standardised numerics, error rate on
    categoricals, combined as their average weighted by the number of hidden cells of each kind
    (lower is better). The mean, median, most-frequent, iterative and forest candidates are
    fitted on the sample; the KNN candidate uses every row as donor, as it will at full scale,
    because its fit only stores rows. On small tables the masking is repeated with fresh cells
    (up to five rounds) until about 2,000 cells were scored. The same cells give a score per
    column (``column_scores_``); a column the chosen method restores no better than its mean
    (numerics) or its mode (categoricals) is logged as a warning.

    Parameters
    ----------
    method : {"auto", "mean", "median", "most_frequent", "knn", "iterative", "forest"} or a \
blend, default="auto"
        Imputation method; ``"knn"`` is :class:`FastKNNImputer`, ``"iterative"`` is
        scikit-learn's ``IterativeImputer`` (MICE with Bayesian ridge, posterior means),
        ``"forest"`` the same with extra-trees (MissForest-style, fitted on at most 2,000 rows).
        A blend of ``BLENDS`` (``"iterative+forest"``) imputes the mean of its parts' imputations.
    numeric_columns, categorical_columns : sequence of str or None, default=None
        Columns to impute. If both are None they are inferred: numeric dtypes (not bool) are
        numeric, every other column categorical. If one is given and the other None, the other
        is empty. Columns in neither list pass through untouched.
    n_neighbors : int, default=5
        Donors per missing value for ``"knn"``.
    max_iter : int, default=10
        Rounds of ``"iterative"`` (``"forest"`` runs at most 2).
    mask_fraction : float, default=0.1
        Share of known values hidden to score candidates.
    score_sample : int, default=5000
        Rows used to score candidates.
    random_state : int, default=0
        Seed of the masking, the sample and the iterative imputers.
    n_jobs : int or None, default=None
        Threads that ``fit`` runs independent fits on side by side: the candidates of
        ``"auto"``, the parts of a blend, the numeric and the categorical method when they
        differ. scikit-learn's convention: None is one thread (unless a joblib
        ``parallel_config`` says otherwise), -1 every core. The results do not depend on it.

    Attributes
    ----------
    method_ : str
        The method ``transform`` uses for the numerics (and for everything unless ``"auto"``
        found another method better for the categoricals). ``"auto"`` may choose a blend, named
        by its parts (``"iterative+forest"``): the mean of their imputations.
    categorical_method_ : str
        The method ``transform`` uses for the categoricals. ``"auto"`` chooses each kind on
        its own hidden cells: lowest RMSE for numerics, lowest error rate for categoricals.
    scores_ : pandas.DataFrame
        One row per candidate: ``method``, ``numeric_rmse``, ``categorical_error``, ``score``,
        ``seconds`` (wall-clock, summed over masking rounds; with ``n_jobs`` above one the
        candidates share the cores, so each takes longer than alone); no rows when ``method``
        is not ``"auto"``.
    score_records_ : list of dict
        The same, as plain records (what is serialised).
    column_scores_ : pandas.DataFrame
        One row per imputed column: ``column``, ``kind``, ``hidden_cells``, the chosen
        ``method``'s ``error`` (standardised RMSE or error rate), the mean's (or mode's)
        ``mean_error`` on the same cells and ``no_better_than_mean``; empty unless ``"auto"``.
    column_score_records_ : list of dict
        The same, as plain records.
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
    categorical_imputer_ : estimator or None
        The fitted imputer whose categorical blocks are used, when it differs from ``imputer_``.
    parts_ : dict of str to estimator
        The fitted single methods ``imputer_`` and ``categorical_imputer_`` are made of (a
        blend's parts), each fitted once and shared: the numeric and the categorical choice
        often have parts in common. Empty when there is no column to impute (``imputer_`` is
        then unfitted); absent on imputers saved before this attribute, which keep their own
        ``imputer_`` and ``categorical_imputer_``.
    feature_names_in_ : ndarray of str
        Columns of the frame seen in ``fit``.
    """

    _parameter_constraints: dict = {
        "method": [StrOptions(set(METHODS) | set(BLENDS))],
        "numeric_columns": ["array-like", None],
        "categorical_columns": ["array-like", None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "mask_fraction": [Interval(Real, 0, 1, closed="neither")],
        "score_sample": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        # joblib's convention: -1 every core, -2 all but one; 0 means nothing.
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
    }

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
        n_jobs: int | None = None,
    ) -> None:
        self.method = method
        self.numeric_columns = numeric_columns
        self.categorical_columns = categorical_columns
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.mask_fraction = mask_fraction
        self.score_sample = score_sample
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Imputers saved before n_jobs existed: one thread, as they were fitted.
        super().__setstate__({"n_jobs": None, **state})
        # Saved with shared parts: the numeric and the categorical imputer are made of them again.
        # Imputers saved before have no parts_ and keep their own imputer_.
        if getattr(self, "parts_", None) and not hasattr(self, "imputer_"):
            self._assemble()

    # ---- encoding ------------------------------------------------------------------------

    def _layout(self) -> Layout:
        blocks, start = [], len(self.numeric_columns_)
        for name in self.categorical_columns_:
            stop = start + len(self.encoded_categories_[name])
            blocks.append((start, stop))
            start = stop
        codes = [
            np.asarray(self.encoded_categories_[c], dtype=object) for c in self.categorical_columns_
        ]
        return Layout(list(self.numeric_columns_), blocks, list(self.categorical_columns_), codes)

    def _settings(self) -> Settings:
        return Settings(
            n_neighbors=self.n_neighbors,
            max_iter=self.max_iter,
            mask_fraction=self.mask_fraction,
            score_sample=self.score_sample,
            seed=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        """Standardise numerics and one-hot encode categoricals (NaN blocks where missing)."""
        numeric = numeric_block(X, self.numeric_columns_)
        blocks = [(numeric - self.means_) / self.scales_]
        for name in self.categorical_columns_:
            blocks.append(one_hot(X[name], self.encoded_categories_[name]))
        return np.hstack(blocks)

    def _decode_into(self, out: pd.DataFrame, X: pd.DataFrame, filled: np.ndarray) -> None:
        """Write imputed values into the gaps of ``out`` (a copy of ``X``)."""
        n_num = len(self.numeric_columns_)
        if n_num:
            numeric = numeric_block(X, self.numeric_columns_)
            restored = filled[:, :n_num] * self.scales_ + self.means_
            numeric = np.where(np.isnan(numeric), restored, numeric)
            for i, name in enumerate(self.numeric_columns_):
                out[name] = pd.Series(numeric[:, i], index=out.index, dtype=np.float64)
        for name, (start, stop) in zip(
            self.categorical_columns_, self._layout().blocks, strict=True
        ):
            out[name] = decode_category(
                X[name], filled[:, start:stop], self.encoded_categories_[name]
            )

    def _learn_encoding(self, X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.categories_ = {
            name: sorted(X[name].dropna().unique().tolist(), key=str) for name in categorical
        }
        self.encoded_categories_ = {name: encoded_categories(X[name]) for name in categorical}
        values = numeric_block(X, numeric)
        self.means_ = np.nanmean(values, axis=0) if numeric else np.empty(0)
        scales = np.nanstd(values, axis=0) if numeric else np.empty(0)
        self.scales_ = np.where(np.isfinite(scales) & (scales > 0), scales, 1.0)

    # ---- choice --------------------------------------------------------------------------

    def _choose(self, X: pd.DataFrame, encoded: np.ndarray) -> None:
        """Score every candidate on masked known cells and keep the best (``method="auto"``)."""
        truth = [X[name].to_numpy(dtype=object) for name in self.categorical_columns_]
        tally = mask_and_score(encoded, truth, self._layout(), self._settings())
        self.score_records_ = tally.records()
        self.method_, self.categorical_method_ = _best(self.score_records_)
        self.column_score_records_ = tally.column_records(self.method_, self.categorical_method_)
        for record in self.column_score_records_:
            if record["no_better_than_mean"]:
                log.warning(
                    "column %r: %s restores hidden cells no better than the column's %s "
                    "(%s %.3f vs %.3f on %d cells)",
                    record["column"],
                    record["method"],
                    "mean" if record["kind"] == "numeric_rmse" else "mode",
                    record["kind"],
                    record["error"],
                    record["mean_error"],
                    record["hidden_cells"],
                )

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
        return pd.DataFrame(self.score_records_, columns=_SCORE_COLUMNS)

    @property
    def column_scores_(self) -> pd.DataFrame:
        """Per-column mask-and-score results of the chosen method (empty unless ``"auto"``)."""
        check_is_fitted(self)
        return pd.DataFrame(self.column_score_records_, columns=_COLUMN_SCORE_COLUMNS)

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
        try:
            return self._fit(X)
        except InvalidParameterError as err:
            raise ConfigError(
                f"invalid imputer setting: {err}", hint="see TableImputer's parameters"
            ) from err

    @_fit_context(prefer_skip_nested_validation=True)
    @_single_threaded_blas
    def _fit(self, X: pd.DataFrame) -> TableImputer:
        _require_frame(X, "with column names")
        numeric, categorical = infer_columns(
            X,
            None if self.numeric_columns is None else list(self.numeric_columns),
            None if self.categorical_columns is None else list(self.categorical_columns),
        )
        self._learn_encoding(X, numeric, categorical)
        encoded = self._encode(X)
        self.score_records_, self.column_score_records_ = [], []
        if self.method == "auto":
            self._choose(X, encoded)
        else:
            self.method_ = self.categorical_method_ = self.method
        layout, settings = self._layout(), self._settings()
        # With no column to impute there is nothing to learn (and every imputer rejects a
        # matrix without columns); transform never calls the imputer then.
        if encoded.shape[1]:
            self.parts_ = fit_parts(self._backend_methods(), encoded, layout, settings)
            self._assemble()
        else:
            self.parts_ = {}
            backends = [make_backend(m, layout, settings) for m in self._backend_methods()]
            self.imputer_, self.categorical_imputer_ = (*backends, None)[:2]
        return self

    def _backend_methods(self) -> list[str]:
        """Return the numeric method, and the categorical one when it differs (with columns)."""
        if self.categorical_method_ != self.method_ and self.categorical_columns_:
            return [self.method_, self.categorical_method_]
        return [self.method_]

    def _assemble(self) -> None:
        backends = [assemble(m, self.parts_, self.n_jobs) for m in self._backend_methods()]
        self.imputer_, self.categorical_imputer_ = (*backends, None)[:2]

    def __getstate__(self) -> dict[str, Any]:
        # The fitted parts are saved once; the numeric and the categorical imputer are made of
        # them again on load (saved as well, a part both use would be written twice).
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        if state.get("parts_"):
            del state["imputer_"], state["categorical_imputer_"]
        return state

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
        _require_frame(X, "with the training column names")
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
        if not np.isnan(encoded).any():
            filled = encoded
        else:
            backends = [b for b in (self.imputer_, self.categorical_imputer_) if b is not None]
            filled, *categorical = impute_with(backends, encoded)
            if categorical:
                n_num = len(self.numeric_columns_)
                filled[:, n_num:] = categorical[0][:, n_num:]
        self._decode_into(out, X, filled)
        return out


def _require_frame(X: Any, columns: str) -> None:
    if not isinstance(X, pd.DataFrame):
        raise ConfigError(
            f"TableImputer needs a pandas DataFrame, got {type(X).__name__}",
            hint=f"wrap the data in pandas.DataFrame {columns}",
        )
