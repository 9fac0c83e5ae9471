"""Describe where a table's gaps are, and test whether they look missing completely at random.

:func:`profile_missingness` counts gaps per column and per co-missing pattern, correlates the
missingness indicators, and runs Little's MCAR test on the numeric columns.
:func:`plot_missingness` draws the missingness matrix. Both are plain functions (no Prefect):
the pipeline turns :meth:`MissingnessProfile.to_markdown` into an artifact and
:meth:`MissingnessProfile.to_dict` into MLflow parameters or a JSON file.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["MissingnessProfile", "little_mcar_test", "plot_missingness", "profile_missingness"]

MCAR_SAMPLE = 5000
"""Rows used by Little's test; larger frames are subsampled (seeded)."""

MCAR_ALPHA = 0.05
"""Significance level of the verdict text."""

_TOP_PATTERNS = 10


@dataclass(frozen=True)
class MissingnessProfile:
    """Where the gaps of a table are and whether they look missing completely at random.

    Attributes
    ----------
    columns : pandas.DataFrame
        One row per column: ``column``, ``missing`` (count), ``share`` (of rows).
    patterns : pandas.DataFrame
        The most frequent co-missing patterns: ``pattern`` (the missing columns joined by
        ``", "``, ``"(complete)"`` for rows without gaps), ``n_missing_columns``, ``count``,
        ``share``; most frequent first.
    co_missing : pandas.DataFrame
        Pearson correlation of the missingness indicators of the columns that have some, but
        not only, gaps (square, indexed by column).
    mcar : dict
        Little's MCAR test: ``test``, ``statistic``, ``dof``, ``p_value``, ``rows_used``,
        ``columns_used``, ``verdict`` (text). Statistic and p-value are NaN when the test does
        not apply (no numeric gaps, or fewer than two numeric columns with variance).
    n_rows : int
        Rows profiled.
    """

    columns: pd.DataFrame
    patterns: pd.DataFrame
    co_missing: pd.DataFrame
    mcar: dict[str, Any] = field(default_factory=dict)
    n_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as JSON-safe built-in types (NaN becomes None)."""
        return {
            "n_rows": int(self.n_rows),
            "columns": _records(self.columns),
            "patterns": _records(self.patterns),
            "co_missing": {
                str(row): {str(col): _json_value(v) for col, v in values.items()}
                for row, values in self.co_missing.to_dict(orient="index").items()
            },
            "mcar": {key: _json_value(value) for key, value in self.mcar.items()},
        }

    def to_markdown(self) -> str:
        """Return a Markdown report: per-column gaps, top patterns and the MCAR verdict."""
        mcar = self.mcar
        lines = [
            "# Missing values",
            "",
            f"{self.n_rows} rows; {int(self.columns['missing'].sum())} missing cells.",
            "",
            "## Per column",
            "",
            _markdown_table(self.columns.assign(share=self.columns["share"].map("{:.1%}".format))),
            "",
            "## Most frequent patterns",
            "",
            _markdown_table(
                self.patterns.assign(share=self.patterns["share"].map("{:.1%}".format))
            ),
            "",
            f"## {mcar.get('test', 'MCAR test')}",
            "",
            f"statistic {_fmt(mcar.get('statistic'))}, dof {mcar.get('dof')}, "
            f"p-value {_fmt(mcar.get('p_value'))} ({mcar.get('rows_used')} rows, "
            f"columns: {', '.join(mcar.get('columns_used', [])) or 'none'})",
            "",
            str(mcar.get("verdict", "")),
            "",
        ]
        return "\n".join(lines)


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    """Render a small frame as a GitHub Markdown table (no ``tabulate`` dependency)."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


# --------------------------------------------------------------------------------------------
# Little's MCAR test
# --------------------------------------------------------------------------------------------


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
    result: dict[str, Any] = {
        "test": "Little's MCAR test",
        "statistic": math.nan,
        "dof": 0,
        "p_value": math.nan,
        "rows_used": 0,
        "columns_used": [str(c) for c in usable],
    }
    X = df[usable].to_numpy(dtype=np.float64, copy=True) if usable else np.empty((len(df), 0))
    X = X[~np.isnan(X).all(axis=1)] if usable else X[:0]
    if len(X) > max_rows:
        rng = np.random.default_rng(random_state)
        X = X[np.sort(rng.choice(len(X), size=max_rows, replace=False))]
    result["rows_used"] = int(len(X))
    if len(usable) < 2 or not np.isnan(X).any():
        result["verdict"] = (
            "not applicable: needs at least two numeric columns with variance and some gaps in them"
        )
        return result
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
    p_value = float(stats.chi2.sf(statistic, dof)) if dof > 0 else math.nan
    result.update(statistic=float(statistic), dof=int(dof), p_value=p_value)
    if dof <= 0:
        result["verdict"] = "not applicable: a single missingness pattern leaves no dof"
    elif p_value < MCAR_ALPHA:
        result["verdict"] = (
            f"gaps are not missing completely at random (p = {p_value:.3g} < {MCAR_ALPHA}): "
            "they depend on the data, so mean/median filling biases; prefer knn or iterative "
            "imputation, which use the other columns"
        )
    else:
        result["verdict"] = (
            f"no evidence against missing completely at random (p = {p_value:.3g} >= "
            f"{MCAR_ALPHA}); this does not prove MCAR"
        )
    return result


# --------------------------------------------------------------------------------------------
# Profile and plot
# --------------------------------------------------------------------------------------------


def profile_missingness(df: pd.DataFrame, *, random_state: int = 0) -> MissingnessProfile:
    """Count the gaps per column and pattern, correlate them, and run Little's MCAR test.

    Parameters
    ----------
    df : pandas.DataFrame
        Table to profile (not modified).
    random_state : int, default=0
        Seed of the MCAR test's subsample of large frames.

    Returns
    -------
    MissingnessProfile
        The profile; see :func:`little_mcar_test` for the test and its limits.
    """
    isna = df.isna()
    n_rows = len(df)
    missing = isna.sum()
    columns = pd.DataFrame(
        {
            "column": [str(c) for c in df.columns],
            "missing": missing.to_numpy(dtype=np.int64),
            "share": (missing / n_rows).to_numpy(dtype=np.float64)
            if n_rows
            else np.zeros(len(df.columns)),
        }
    )
    names = np.asarray([str(c) for c in df.columns], dtype=object)
    if n_rows:
        masks, counts = np.unique(isna.to_numpy(), axis=0, return_counts=True)
    else:
        masks, counts = np.zeros((0, len(df.columns)), dtype=bool), np.zeros(0, dtype=np.int64)
    order = np.lexsort((masks.sum(axis=1), -counts))[:_TOP_PATTERNS]
    patterns = pd.DataFrame(
        {
            "pattern": [", ".join(names[masks[i]]) or "(complete)" for i in order],
            "n_missing_columns": [int(masks[i].sum()) for i in order],
            "count": [int(counts[i]) for i in order],
            "share": [float(counts[i] / n_rows) for i in order],
        }
    )
    partial = [c for c in df.columns if 0 < missing[c] < n_rows]
    co_missing = isna[partial].astype(np.float64).corr() if partial else pd.DataFrame()
    co_missing.index = [str(c) for c in co_missing.index]
    co_missing.columns = [str(c) for c in co_missing.columns]
    return MissingnessProfile(
        columns=columns,
        patterns=patterns,
        co_missing=co_missing,
        mcar=little_mcar_test(df, random_state=random_state),
        n_rows=n_rows,
    )


def plot_missingness(df: pd.DataFrame, path: Path) -> Path:
    """Draw the missingness matrix (rows down, columns across, gaps dark) as a PNG.

    Uses matplotlib's object API with the Agg canvas, so it touches no global pyplot state
    and needs no display. Frames above 5,000 rows are drawn from an evenly spaced subset of
    rows (the title says so).

    Parameters
    ----------
    df : pandas.DataFrame
        Table to draw.
    path : pathlib.Path
        Where to write the PNG (parent directories are created).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    isna = df.isna().to_numpy()
    n_rows = len(df)
    shown = isna
    if n_rows > MCAR_SAMPLE:
        shown = isna[np.linspace(0, n_rows - 1, MCAR_SAMPLE).astype(int)]
    share = isna.mean(axis=0) if n_rows else np.zeros(isna.shape[1])
    width = max(4.0, 0.45 * isna.shape[1] + 2.0)
    fig = Figure(figsize=(width, 6.0))
    FigureCanvasAgg(fig)
    top, matrix = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 4]})
    positions = np.arange(isna.shape[1])
    top.bar(positions, share, color="0.3")
    top.set_ylim(0, 1)
    top.set_ylabel("share missing")
    title = f"Missing values: {n_rows} rows x {isna.shape[1]} columns"
    if shown.shape[0] < n_rows:
        title += f" ({shown.shape[0]} evenly spaced rows drawn)"
    top.set_title(title)
    if shown.size:
        matrix.imshow(
            shown,
            aspect="auto",
            interpolation="nearest",
            cmap="Greys",
            vmin=0,
            vmax=1,
            extent=(-0.5, isna.shape[1] - 0.5, n_rows, 0),
        )
    matrix.set_xticks(positions, [str(c) for c in df.columns], rotation=60, ha="right")
    matrix.set_ylabel("row")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path
