"""Describe where a table's gaps are, and test whether they look missing completely at random.

:func:`profile_missingness` counts gaps per column and per co-missing pattern, correlates the
missingness indicators, and runs Little's MCAR test (:mod:`clusterflow.mcar`) on the numeric
columns.
:func:`plot_missingness` draws the missingness matrix. Both are plain functions (no Prefect):
the pipeline turns :meth:`MissingnessProfile.to_markdown` into an artifact and
:meth:`MissingnessProfile.to_dict` into MLflow parameters or a JSON file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.mcar import MCAR_ALPHA, MCAR_SAMPLE, little_mcar_test

# The MCAR names are re-exported: they lived here before clusterflow/mcar.py.
__all__ = [
    "MCAR_ALPHA",
    "MCAR_SAMPLE",
    "MissingnessProfile",
    "little_mcar_test",
    "plot_missingness",
    "profile_missingness",
]

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
