"""One feature matrix from an imputed table plus optional text embeddings.

Weighting rule (copied into the README)
---------------------------------------
Every block of the matrix (text, numeric, categorical) is scaled so that its *total variance*
(the sum of the variances of its columns, i.e. its contribution to squared Euclidean distances)
equals the block's weight. A block therefore counts by its weight, never by its column count:
ten numeric columns weigh as much as one, and a 384-dimensional embedding weighs as much as the
numeric block when ``text_weight == numeric_weight``.

- Heavy tails are tamed per column, by evidence (``tails="auto"``): a column whose sample
  skewness exceeds ``skew_threshold`` in absolute value is replaced by ``log1p`` (non-negative
  columns: counts, sizes) or a Yeo-Johnson transform (columns with negative values), and the
  transform is kept only if it at least halves the absolute skewness. Without it, a count that
  spans five orders of magnitude owns the standardised block: a handful of viral rows sit
  dozens of standard deviations out and every other row collapses near zero.
  ``transforms_`` records the decision and the skewness before and after, per column.
- Numeric columns are then standardised (``StandardScaler``, or ``RobustScaler`` with
  ``scaling="robust"``), then the block is divided by ``sqrt(n_numeric)``.
- Categorical columns are one-hot encoded; the one-hot block is divided by the square root of
  its total variance. The default ``categorical_weight`` (0.2) was chosen leave-one-dataset-out
  on the quality benchmark's seven sets with categorical columns (README): equal weight wins
  where the categories name the groups and carves the data along unrelated levels elsewhere.
- Text embeddings (L2-normalised) are scaled the same way. Rows whose embedding is all zeros
  mean "no text": they keep a zero text block, which is equally far from every direction.
  The text variance is measured on rows that have text.
- With both text and tabular columns, the default gives text and the tabular columns equal say
  (``text_weight = numeric_weight = 1``); categoricals add ``categorical_weight`` on top.

Optionally ``n_components`` reduces the weighted matrix with PCA (useful before density-based
clustering of high-dimensional text).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.preprocessing import OneHotEncoder, PowerTransformer, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from clusterflow.config import CATEGORICAL_WEIGHT, TEXT_WEIGHT
from clusterflow.errors import ConfigError, ValidationFailed
from clusterflow.feature_tails import SKEW_THRESHOLD, decide_tail, fit_tail

# SKEW_THRESHOLD and decide_tail are re-exported: they lived here before feature_tails.py.
__all__ = ["SKEW_THRESHOLD", "FeatureBuilder", "decide_tail"]

_EPS = 1e-12


class FeatureBuilder(TransformerMixin, BaseEstimator):
    """Turn an imputed table (no NaN) plus optional text embeddings into one feature matrix.

    Parameters
    ----------
    numeric_columns : sequence of str, default=()
        Numeric columns to standardise.
    categorical_columns : sequence of str, default=()
        Categorical columns to one-hot encode.
    text_weight : float, default=1.0
        Total variance given to the text block (when embeddings are passed).
    numeric_weight : float, default=1.0
        Total variance given to the numeric block.
    categorical_weight : float, default=0.2
        Total variance given to the categorical block.
    scaling : {"standard", "robust"}, default="standard"
        Scaler of the numeric columns.
    tails : {"auto", "none"}, default="auto"
        ``"auto"`` log1p / Yeo-Johnson transforms heavy-tailed numeric columns (see the module
        docstring); ``"none"`` standardises the raw values.
    skew_threshold : float, default=SKEW_THRESHOLD
        Absolute skewness above which a column's transform is considered.
    n_components : int or None, default=None
        If set, reduce the weighted matrix to this many PCA components.
    random_state : int, default=0
        Seed of the (randomised) PCA.

    Attributes
    ----------
    blocks_ : dict of str to slice
        Which columns of the output hold the ``"text"``, ``"numeric"`` and ``"categorical"``
        blocks (before any PCA).
    weights_ : dict of str to float
        The weight used for each present block.
    scale_ : dict of str to float
        The factor each block was multiplied by after scaling/encoding.
    feature_names_out_ : ndarray of str
        Names of the output columns.
    n_features_out_ : int
        Number of output columns.
    pca_ : PCA or None
        The fitted reduction when ``n_components`` is set.
    transforms_ : dict of str to dict
        Per numeric column: ``{"transform", "skew_before", "skew_after"}``.
    """

    def __init__(
        self,
        *,
        numeric_columns: Sequence[str] = (),
        categorical_columns: Sequence[str] = (),
        text_weight: float = TEXT_WEIGHT,
        numeric_weight: float = 1.0,
        categorical_weight: float = CATEGORICAL_WEIGHT,
        scaling: str = "standard",
        tails: str = "auto",
        skew_threshold: float = SKEW_THRESHOLD,
        n_components: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.numeric_columns = numeric_columns
        self.categorical_columns = categorical_columns
        self.text_weight = text_weight
        self.numeric_weight = numeric_weight
        self.categorical_weight = categorical_weight
        self.scaling = scaling
        self.tails = tails
        self.skew_threshold = skew_threshold
        self.n_components = n_components
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _check_table(self, X: pd.DataFrame) -> None:
        if not isinstance(X, pd.DataFrame):
            raise ConfigError(
                f"FeatureBuilder expects a pandas DataFrame, got {type(X).__name__}",
                hint="pass the imputed table as a DataFrame",
            )
        wanted = list(self.numeric_columns) + list(self.categorical_columns)
        missing = [c for c in wanted if c not in X.columns]
        if missing:
            raise ConfigError(
                f"columns {missing} are not in the table (it has {list(X.columns)})",
                hint="check --exclude-columns and the column names",
            )
        if wanted and X[wanted].isna().any().any():
            bad = [c for c in wanted if X[c].isna().any()]
            raise ValidationFailed(
                f"columns {bad} still contain missing values",
                hint="impute the table before building features",
            )

    @staticmethod
    def _check_embeddings(embeddings: np.ndarray | None, n_rows: int) -> np.ndarray | None:
        if embeddings is None:
            return None
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != n_rows:
            raise ConfigError(
                f"embeddings have shape {emb.shape}; expected (n_rows={n_rows}, vector_dim)",
                hint="pass one embedding per table row (zeros for rows without text)",
            )
        if not np.isfinite(emb).all():
            raise ValidationFailed(
                "embeddings contain NaN or infinite values",
                hint="re-encode the text; rows without text get a zero vector",
            )
        return emb

    def _numeric_block(self, X: pd.DataFrame) -> np.ndarray:
        try:
            values = X[list(self.numeric_columns)].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValidationFailed(
                f"numeric columns {list(self.numeric_columns)} hold non-numeric values",
                hint="declare such columns as categorical or clean them",
            ) from err
        for j, column in enumerate(self.numeric_columns):
            kind = self.transforms_[column]["transform"]
            if kind == "log1p":
                # New rows may hold values below the training minimum: clip at 0 (log1p's domain).
                values[:, j] = np.log1p(np.maximum(values[:, j], 0.0))
            elif kind == "yeo-johnson":
                values[:, j] = self.power_[column].transform(values[:, j : j + 1])[:, 0]
        return values

    def _fit_tails(self, X: pd.DataFrame) -> None:
        self.transforms_: dict[str, dict[str, float | str]] = {}
        self.power_: dict[str, PowerTransformer] = {}
        for column in self.numeric_columns:
            try:
                values = X[column].to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                values = np.zeros(len(X))  # _numeric_block reports it
            record, power = fit_tail(values, tails=self.tails, threshold=self.skew_threshold)
            if power is not None:
                self.power_[column] = power
            self.transforms_[column] = record

    def _check_params(self, emb: np.ndarray | None) -> None:
        """Validate the weights, the scaling and tails options, and that some feature exists."""
        for name in ("text_weight", "numeric_weight", "categorical_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.scaling not in ("standard", "robust"):
            raise ConfigError(f"scaling must be 'standard' or 'robust', got {self.scaling!r}")
        if self.tails not in ("auto", "none"):
            raise ConfigError(f"tails must be 'auto' or 'none', got {self.tails!r}")
        if emb is None and not self.numeric_columns and not self.categorical_columns:
            raise ConfigError(
                "no features: no numeric or categorical columns and no embeddings",
                hint="name the feature columns or pass a text column",
            )

    def _add_block(self, block: str, values: np.ndarray, weight: float, start: int) -> int:
        """Record one block's scale factor, weight and output columns; return where it ends.

        Parameters
        ----------
        block : {"text", "numeric", "categorical"}
            The block's name.
        values : ndarray of shape (n_rows, width)
            The block as scaled or encoded, on the rows its variance is measured on.
        weight : float
            The total variance the block is given.
        start : int
            First output column of the block (where the blocks before it end).

        Returns
        -------
        int
            ``start + width``: where the next block starts.
        """
        total_var = float(values.var(axis=0).sum())
        self.scale_[block] = float(np.sqrt(weight / max(total_var, _EPS)))
        self.weights_[block] = float(weight)
        self.blocks_[block] = slice(start, start + values.shape[1])
        return start + values.shape[1]

    # ------------------------------------------------------------------ API
    def fit(
        self, X: pd.DataFrame, y: object = None, *, embeddings: np.ndarray | None = None
    ) -> FeatureBuilder:
        """Learn scalers, encoders and block scale factors.

        Parameters
        ----------
        X : DataFrame
            The imputed table (no missing values in the chosen columns).
        y : ignored
            Present for scikit-learn compatibility.
        embeddings : ndarray of shape (n_rows, dim), optional
            L2-normalised text vectors; an all-zero row means "no text".

        Returns
        -------
        self : FeatureBuilder
            The fitted builder.
        """
        self._check_table(X)
        emb = self._check_embeddings(embeddings, len(X))
        self._check_params(emb)
        self.weights_: dict[str, float] = {}
        self.scale_: dict[str, float] = {}
        self.blocks_: dict[str, slice] = {}
        names: list[str] = []
        start = 0
        self.has_text_ = emb is not None
        if emb is not None:
            # The text variance is measured on the rows that have text.
            has_text = np.linalg.norm(emb, axis=1) > _EPS
            self.text_dim_ = emb.shape[1]
            ref = emb[has_text] if has_text.any() else emb
            start = self._add_block("text", ref, self.text_weight, start)
            names += [f"text_{i}" for i in range(emb.shape[1])]
        self._fit_tails(X)
        if self.numeric_columns:
            self.scaler_ = StandardScaler() if self.scaling == "standard" else RobustScaler()
            scaled = self.scaler_.fit_transform(self._numeric_block(X))
            start = self._add_block("numeric", scaled, self.numeric_weight, start)
            names += list(self.numeric_columns)
        if self.categorical_columns:
            self.encoder_ = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            onehot = self.encoder_.fit_transform(X[list(self.categorical_columns)].astype(str))
            start = self._add_block("categorical", onehot, self.categorical_weight, start)
            names += list(self.encoder_.get_feature_names_out(list(self.categorical_columns)))
        self.feature_names_out_ = np.asarray(names, dtype=object)
        self._fit_reduction(X, emb, n_columns=start)
        return self

    def _fit_reduction(self, X: pd.DataFrame, emb: np.ndarray | None, n_columns: int) -> None:
        """Fit the optional PCA of the weighted matrix and set ``n_features_out_``."""
        self.pca_ = None
        if self.n_components is not None:
            full = self._assemble(X, emb)
            n_comp = int(min(self.n_components, full.shape[0], full.shape[1]))
            self.pca_ = PCA(n_components=n_comp, random_state=self.random_state).fit(full)
            self.n_features_out_ = n_comp
        else:
            self.n_features_out_ = n_columns

    def _assemble(self, X: pd.DataFrame, emb: np.ndarray | None) -> np.ndarray:
        parts = []
        if self.has_text_:
            if emb is None:
                raise ConfigError(
                    "this FeatureBuilder was fitted with embeddings; transform needs them too",
                    hint="pass embeddings=... (zero rows for records without text)",
                )
            if emb.shape[1] != self.text_dim_:
                raise ConfigError(
                    f"embeddings have {emb.shape[1]} dimensions; the builder was fitted on "
                    f"{self.text_dim_}",
                    hint="use the same embedding model as in training",
                )
            parts.append(emb * self.scale_["text"])
        if self.numeric_columns:
            parts.append(self.scaler_.transform(self._numeric_block(X)) * self.scale_["numeric"])
        if self.categorical_columns:
            onehot = self.encoder_.transform(X[list(self.categorical_columns)].astype(str))
            parts.append(onehot * self.scale_["categorical"])
        return np.hstack(parts)

    def transform(self, X: pd.DataFrame, *, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Build the weighted feature matrix.

        Parameters
        ----------
        X : DataFrame
            The imputed table with the columns seen in ``fit``.
        embeddings : ndarray of shape (n_rows, dim), optional
            Required when the builder was fitted with embeddings.

        Returns
        -------
        ndarray of shape (n_rows, n_features_out_), float32
            The feature matrix.
        """
        check_is_fitted(self, "blocks_")
        self._check_table(X)
        emb = self._check_embeddings(embeddings, len(X))
        full = self._assemble(X, emb)
        if self.pca_ is not None:
            full = self.pca_.transform(full)
        return full.astype(np.float32)

    def fit_transform(
        self, X: pd.DataFrame, y: object = None, *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Fit, then transform ``X`` (see :meth:`fit` and :meth:`transform`).

        Parameters
        ----------
        X : DataFrame
            The imputed table.
        y : ignored
            Present for scikit-learn compatibility.
        embeddings : ndarray of shape (n_rows, dim), optional
            L2-normalised text vectors.

        Returns
        -------
        ndarray of shape (n_rows, n_features_out_), float32
            The feature matrix.
        """
        return self.fit(X, embeddings=embeddings).transform(X, embeddings=embeddings)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Return the output column names (``pca0..`` when reduced).

        Parameters
        ----------
        input_features : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        ndarray of str
            One name per output column.
        """
        check_is_fitted(self, "blocks_")
        if self.pca_ is not None:
            return np.asarray([f"pca{i}" for i in range(self.n_features_out_)], dtype=object)
        return self.feature_names_out_
