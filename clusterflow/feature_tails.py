"""Heavy tails of numeric feature columns: decide per column, by skewness, how to tame them.

A column whose absolute sample skewness exceeds the threshold is replaced by ``log1p``
(non-negative columns) or a Yeo-Johnson transform (columns with negative values), and the
transform is kept only if it at least halves the absolute skewness (see the weighting rule in
:mod:`clusterflow.features`, which applies the decisions).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import skew
from sklearn.preprocessing import PowerTransformer

__all__ = ["SKEW_THRESHOLD", "decide_tail", "fit_tail"]

_EPS = 1e-12
SKEW_THRESHOLD = 2.0


def _abs_skew(values: np.ndarray) -> float:
    if np.ptp(values) <= _EPS:
        return 0.0
    return float(abs(skew(values, bias=True)))


def decide_tail(
    values: np.ndarray, *, threshold: float = SKEW_THRESHOLD
) -> tuple[str, float, float]:
    """Choose the transform of one numeric column by its skewness.

    Parameters
    ----------
    values : ndarray of shape (n_rows,)
        The column (no NaN).
    threshold : float, default=SKEW_THRESHOLD
        Absolute skewness above which a transform is considered.

    Returns
    -------
    tuple of (str, float, float)
        ``("none" | "log1p" | "yeo-johnson", |skew| before, |skew| after)``.
    """
    before = _abs_skew(values)
    if before <= threshold:
        return "none", before, before
    if values.min() >= 0:
        kind, after = "log1p", _abs_skew(np.log1p(values))
    else:
        pt = PowerTransformer(method="yeo-johnson", standardize=False)
        kind, after = "yeo-johnson", _abs_skew(pt.fit_transform(values[:, None])[:, 0])
    # A transform that does not at least halve the skewness is not worth its distortion.
    if after > 0.5 * before:
        return "none", before, before
    return kind, before, after


def fit_tail(
    values: np.ndarray, *, tails: str, threshold: float
) -> tuple[dict[str, float | str], PowerTransformer | None]:
    """Decide and fit the transform of one numeric column.

    Parameters
    ----------
    values : ndarray of shape (n_rows,)
        The column (no NaN).
    tails : {"auto", "none"}
        ``"auto"`` decides by :func:`decide_tail`; ``"none"`` keeps the raw values.
    threshold : float
        Absolute skewness above which a transform is considered.

    Returns
    -------
    record : dict
        ``{"transform", "skew_before", "skew_after"}`` (skewness rounded to 3 decimals).
    power : PowerTransformer or None
        The fitted Yeo-Johnson transform when that is the decision.
    """
    kind, before, after = "none", _abs_skew(values), _abs_skew(values)
    if tails == "auto":
        kind, before, after = decide_tail(values, threshold=threshold)
    power = None
    if kind == "yeo-johnson":
        pt = PowerTransformer(method="yeo-johnson", standardize=False)
        power = pt.fit(values[:, None])
    record: dict[str, float | str] = {
        "transform": kind,
        "skew_before": round(before, 3),
        "skew_after": round(after, 3),
    }
    return record, power
