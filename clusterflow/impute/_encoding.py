"""Encode a mixed table as one numeric matrix and decode imputed values back into the table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clusterflow.errors import ConfigError

# One-hot columns are scaled so that a mismatch on one categorical costs as much squared distance
# as one standard deviation on one numeric (two entries differ by 1/sqrt(2) each).
_ONE_HOT_SCALE = 1.0 / math.sqrt(2.0)
# Categories beyond the most frequent ones share an all-zero one-hot block ("other"): a
# free-text-like column with thousands of values must not become thousands of columns, and a
# rare category is never the best guess for a gap anyway.
_MAX_ONE_HOT = 20


def infer_columns(
    X: pd.DataFrame,
    numeric_columns: list[str] | None,
    categorical_columns: list[str] | None,
) -> tuple[list[str], list[str]]:
    """Return the numeric and categorical columns to impute, checked against ``X``.

    Raises
    ------
    ConfigError
        If a listed column is absent, listed twice, or a column to impute is entirely missing.
    """
    if numeric_columns is None and categorical_columns is None:
        numeric, categorical = [], []
        for name in X.columns:
            dtype = X[name].dtype
            is_num = pd.api.types.is_numeric_dtype(dtype)
            if is_num and not pd.api.types.is_bool_dtype(dtype):
                numeric.append(name)
            else:
                categorical.append(name)
    else:
        numeric = list(numeric_columns or [])
        categorical = list(categorical_columns or [])
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


def encoded_categories(column: pd.Series) -> list:
    """Return the (at most 20) most frequent categories of ``column``, sorted as text."""
    counts = column.value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return sorted([value for value, _ in ranked[:_MAX_ONE_HOT]], key=str)


def numeric_block(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Return ``X[columns]`` as a float matrix, NaN where missing."""
    if not columns:
        return np.empty((len(X), 0))
    try:
        numeric = X[columns].apply(pd.to_numeric)
        return numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"numeric columns {columns} hold values that are not numbers: {err}",
            hint="list such columns as categorical_columns or clean the values",
        ) from err


def one_hot(column: pd.Series, categories: list) -> np.ndarray:
    """One-hot encode ``column`` on ``categories`` (NaN rows where missing, zeros for "other")."""
    codes = pd.Categorical(column, categories=categories).codes
    onehot = np.zeros((len(column), len(categories)))
    known = codes >= 0
    onehot[np.flatnonzero(known), codes[known]] = _ONE_HOT_SCALE
    # A rare category, or one unseen in fit, is an all-zero block: known, "other".
    onehot[column.isna().to_numpy()] = np.nan
    return onehot


def decode_category(column: pd.Series, block: np.ndarray, categories: list) -> pd.Series:
    """Fill the gaps of ``column`` with the category of the largest imputed indicator."""
    gaps = column.isna().to_numpy()
    values = column.astype(object).to_numpy(copy=True)
    if gaps.any():
        choice = np.argmax(block[gaps], axis=1)
        values[gaps] = np.asarray(categories, dtype=object)[choice]
    return pd.Series(values, index=column.index, dtype=object)
