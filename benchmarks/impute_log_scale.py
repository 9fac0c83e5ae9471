"""Does imputing skewed positive columns on a log scale restore them better? Evidence, per table.

For each table of ``impute_quality.py`` with skewed positive numerics (all observed values > 0,
sample skewness > 1), 10% of the known cells are hidden completely at random (seeds 0-2), and
clusterflow's ``iterative``, ``knn`` and ``forest`` imputers fill the table twice: as it is, and
with the skewed columns replaced by their logarithm before imputation and exponentiated after
(what doing it inside the imputer would do). Scored on the hidden cells of the skewed columns
only: standardised RMSE on the original scale (what the user sees, and what mask-and-score
measures) and, for information, the median absolute standardised error.

    python benchmarks/impute_log_scale.py [--tables mammals,hitters]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd
from impute_quality import hide_cells, load_tables

from clusterflow.impute import TableImputer

logging.getLogger("clusterflow.impute").setLevel(logging.ERROR)


def skewed(frame: pd.DataFrame, numeric: list[str]) -> list[str]:
    out = []
    for name in numeric:
        values = frame[name].dropna().astype(float)
        if len(values) > 2 and values.min() > 0 and values.skew() > 1:
            out.append(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="")
    args = parser.parse_args()
    tables = load_tables()
    rows = []
    for name in [t for t in args.tables.split(",") if t] or list(tables):
        frame, numeric, categorical = tables[name]
        logged = skewed(frame, numeric)
        if not logged:
            continue
        rows += table_rows(name, frame, numeric, categorical, logged)
        print(f"  done {name}: {logged}", flush=True)
    summarise(pd.DataFrame(rows))


def table_rows(
    name: str, frame: pd.DataFrame, numeric: list[str], categorical: list[str], logged: list[str]
) -> list[dict]:
    """Score each imputer on one table, raw and on a log scale, for seeds 0-2.

    Parameters
    ----------
    name : str
        The table's name, for the rows.
    frame : pandas.DataFrame
        The table as loaded.
    numeric, categorical : list of str
        Its columns by role.
    logged : list of str
        The skewed positive numeric columns: imputed on a log scale in the ``log`` runs, and
        the only columns scored.

    Returns
    -------
    list of dict
        One row per (seed, method, scale): its RMSE and median absolute standardised error.
    """
    rows = []
    columns = [*numeric, *categorical]
    truth = frame[columns].copy()
    truth[numeric] = truth[numeric].astype(float)
    truth[categorical] = truth[categorical].astype(object)
    for seed in range(3):
        mask = hide_cells(truth, columns, numeric[0], "mcar", seed)
        masked = truth.copy()
        for j, column in enumerate(columns):
            masked.loc[mask[:, j], column] = np.nan
        for method in ("iterative", "knn", "forest"):
            for scale in ("raw", "log"):
                data = masked.copy()
                if scale == "log":
                    data[logged] = np.log(data[logged])
                imputer = TableImputer(
                    method=method,
                    numeric_columns=numeric,
                    categorical_columns=categorical,
                    random_state=seed,
                )
                filled = imputer.fit_transform(data)
                if scale == "log":
                    filled[logged] = np.exp(filled[logged])
                err = hidden_errors(filled, truth, mask, columns, logged)
                rows.append(
                    {
                        "table": name,
                        "columns": len(logged),
                        "seed": seed,
                        "method": method,
                        "scale": scale,
                        "rmse": float(np.sqrt((err**2).mean())),
                        "median_abs": float(err.abs().median()),
                    }
                )
    return rows


def hidden_errors(
    filled: pd.DataFrame,
    truth: pd.DataFrame,
    mask: np.ndarray,
    columns: list[str],
    logged: list[str],
) -> pd.Series:
    """The errors on the hidden cells of the ``logged`` columns, in units of each column's SD."""
    errors = []
    for column in logged:
        rows_hidden = mask[:, columns.index(column)]
        sd = truth[column].std(ddof=0)
        diff = filled.loc[rows_hidden, column] - truth.loc[rows_hidden, column]
        errors.append(diff / sd)
    return pd.concat(errors)


def summarise(results: pd.DataFrame) -> None:
    """Print the mean errors per (table, method) and scale, and how often log beats raw."""
    table = results.pivot_table(
        index=["table", "method"], columns="scale", values=["rmse", "median_abs"], aggfunc="mean"
    )
    table["rmse_log/raw"] = table[("rmse", "log")] / table[("rmse", "raw")]
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    wins = results.pivot_table(
        index=["table", "method", "seed"], columns="scale", values="rmse"
    ).eval("log < raw")
    print(f"\nlog beats raw on RMSE in {int(wins.sum())} of {len(wins)} (table, method, seed)")


if __name__ == "__main__":
    main()
