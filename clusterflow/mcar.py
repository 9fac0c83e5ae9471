"""Little's (1988) test that a table's numeric gaps are missing completely at random (MCAR).

:func:`little_mcar_test` standardises the numeric columns, estimates their mean and covariance
by EM under a multivariate normal model (:func:`_em_normal`) and compares each missingness
pattern's mean with them; its docstring states the test's limits.
:func:`clusterflow.missingness.profile_missingness` runs it as part of the gap profile.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["MCAR_ALPHA", "MCAR_SAMPLE", "little_mcar_test"]

MCAR_SAMPLE = 5000
"""Rows used by Little's test; larger frames are subsampled (seeded)."""

MCAR_ALPHA = 0.05
"""Significance level of the verdict text."""


def _em_normal(
    X: np.ndarray, patterns: np.ndarray, inverse: np.ndarray, *, max_iter: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood mean and covariance of a multivariate normal with gaps, by EM.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Data, NaN where missing; every row has at least one observed value.
    patterns : ndarray of shape (n_patterns, p)
        Distinct observed-masks.
    inverse : ndarray of shape (n,)
        Pattern index of each row.
    max_iter : int
        EM rounds at most (stops when the parameters move less than 1e-8).

    Returns
    -------
    mean : ndarray of shape (p,)
    cov : ndarray of shape (p, p)
        The ML (divide-by-n) estimates.
    """
    n, p = X.shape
    mean = np.nanmean(X, axis=0)
    cov = np.diag(np.nanvar(X, axis=0))
    groups = [np.flatnonzero(inverse == k) for k in range(len(patterns))]
    for _ in range(max_iter):
        sum_x = np.zeros(p)
        sum_xx = np.zeros((p, p))
        for obs, rows in zip(patterns, groups, strict=True):
            mis = ~obs
            block = X[rows]
            filled = np.where(np.isnan(block), 0.0, block)
            if mis.any():
                # Regression of the missing on the observed coordinates under the current model.
                coef = np.linalg.pinv(cov[np.ix_(obs, obs)]) @ cov[np.ix_(obs, mis)]
                centred = block[:, obs] - mean[obs]
                filled[:, mis] = mean[mis] + centred @ coef
                conditional = cov[np.ix_(mis, mis)] - cov[np.ix_(mis, obs)] @ coef
                sum_xx[np.ix_(mis, mis)] += len(rows) * conditional
            sum_x += filled.sum(axis=0)
            sum_xx += filled.T @ filled
        new_mean = sum_x / n
        new_cov = sum_xx / n - np.outer(new_mean, new_mean)
        shift = max(np.abs(new_mean - mean).max(), np.abs(new_cov - cov).max())
        mean, cov = new_mean, new_cov
        if shift < 1e-8:
            break
    return mean, cov


def _tested_rows(
    df: pd.DataFrame, max_rows: int, random_state: int
) -> tuple[list[Any], np.ndarray]:
    """Return the tested columns and the rows the test uses.

    Parameters
    ----------
    df : pandas.DataFrame
        Table; its numeric (non-bool) columns with some variance are tested.
    max_rows : int
        Rows used at most (a seeded subsample of larger frames).
    random_state : int
        Seed of the subsample.

    Returns
    -------
    usable : list
        The tested columns.
    X : ndarray of shape (rows_used, len(usable))
        Their values, NaN where missing, without the rows that miss every tested column.
    """
    numeric = [
        c
        for c in df.columns
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]
    values = df[numeric].to_numpy(dtype=np.float64, copy=True) if numeric else np.empty((0, 0))
    with warnings.catch_warnings():
        # An all-missing column has no spread (NaN) and is left out just below.
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(values, axis=0) if numeric else np.empty(0)
    usable = [c for c, s in zip(numeric, spread, strict=True) if np.isfinite(s) and s > 0]
    X = df[usable].to_numpy(dtype=np.float64, copy=True) if usable else np.empty((len(df), 0))
    X = X[~np.isnan(X).all(axis=1)] if usable else X[:0]
    if len(X) > max_rows:
        rng = np.random.default_rng(random_state)
        X = X[np.sort(rng.choice(len(X), size=max_rows, replace=False))]
    return usable, X


def _little_statistic(X: np.ndarray) -> tuple[float, int]:
    """Return Little's ``d2`` and its degrees of freedom for rows with gaps.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        The tested values, NaN where missing (standardised here).

    Returns
    -------
    statistic : float
        ``sum_j n_j (ybar_j - mu_oj)' Sigma_oj^-1 (ybar_j - mu_oj)`` over the patterns ``j``.
    dof : int
        ``sum_j |o_j| - p``.
    """
    X = (X - np.nanmean(X, axis=0)) / np.nanstd(X, axis=0)
    patterns, inverse = np.unique(~np.isnan(X), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    mean, cov = _em_normal(X, patterns, inverse)
    statistic = 0.0
    observed_total = 0
    for k, obs in enumerate(patterns):
        rows = X[inverse == k][:, obs]
        diff = rows.mean(axis=0) - mean[obs]
        statistic += len(rows) * float(diff @ np.linalg.pinv(cov[np.ix_(obs, obs)]) @ diff)
        observed_total += int(obs.sum())
    dof = observed_total - X.shape[1]
    return statistic, dof


def _verdict(p_value: float, dof: int) -> str:
    """Return the test's conclusion in words (at the level ``MCAR_ALPHA``)."""
    if dof <= 0:
        return "not applicable: a single missingness pattern leaves no dof"
    if p_value < MCAR_ALPHA:
        return (
            f"gaps are not missing completely at random (p = {p_value:.3g} < {MCAR_ALPHA}): "
            "they depend on the data, so mean/median filling biases; prefer knn or iterative "
            "imputation, which use the other columns"
        )
    return (
        f"no evidence against missing completely at random (p = {p_value:.3g} >= "
        f"{MCAR_ALPHA}); this does not prove MCAR"
    )


def little_mcar_test(
    df: pd.DataFrame, *, max_rows: int = MCAR_SAMPLE, random_state: int = 0
) -> dict[str, Any]:
    """Little's (1988) chi-square test that numeric gaps are missing completely at random.

    The numeric columns are standardised; the mean vector and covariance matrix are estimated
    by maximum likelihood under a multivariate normal model with EM. For each missingness
    pattern ``j`` with ``n_j`` rows and observed columns ``o_j``, the mean of those rows is
    compared with the ML mean restricted to ``o_j``:
    ``d2 = sum_j n_j (ybar_j - mu_oj)' Sigma_oj^-1 (ybar_j - mu_oj)``,
    which under MCAR is asymptotically chi-square with ``sum_j |o_j| - p`` degrees of freedom.

    Limits: only numeric columns are tested, and only through their means, so missingness
    that depends on a value without shifting any observed mean goes unseen (e.g. gaps in the
    tails of both sides of one variable). It assumes (approximate) multivariate normality; it
    is sensitive to many sparse patterns, and with many rows it flags departures too small to
    matter. A high p-value is absence of evidence against MCAR, not proof of it. Frames larger
    than ``max_rows`` are subsampled (seeded), which also keeps the test from rejecting every
    large frame. Rows with every tested column missing carry no information and are left out.

    Parameters
    ----------
    df : pandas.DataFrame
        Table; its numeric (non-bool) columns with some variance are tested.
    max_rows : int, default=5000
        Rows used at most.
    random_state : int, default=0
        Seed of the subsample.

    Returns
    -------
    dict
        ``test``, ``statistic``, ``dof``, ``p_value``, ``rows_used``, ``columns_used``,
        ``verdict``.
    """
    usable, X = _tested_rows(df, max_rows, random_state)
    result: dict[str, Any] = {
        "test": "Little's MCAR test",
        "statistic": math.nan,
        "dof": 0,
        "p_value": math.nan,
        "rows_used": int(len(X)),
        "columns_used": [str(c) for c in usable],
    }
    if len(usable) < 2 or not np.isnan(X).any():
        result["verdict"] = (
            "not applicable: needs at least two numeric columns with variance and some gaps in them"
        )
        return result
    statistic, dof = _little_statistic(X)
    p_value = float(stats.chi2.sf(statistic, dof)) if dof > 0 else math.nan
    result.update(statistic=float(statistic), dof=int(dof), p_value=p_value)
    result["verdict"] = _verdict(p_value, dof)
    return result
