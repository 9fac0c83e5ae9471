"""How many rows should mask-and-score use? ``auto``'s accuracy and time against its sample.

``TableImputer(method="auto")`` hides known cells in a sample of rows and fits every candidate on
it (KNN takes every row as donor). A larger sample scores more cells (a less noisy choice) and
costs more: at 100,000 x 20 on one thread the selection on 5,000 rows was about 30% of the chosen
imputer's own time, most of it the candidates fitted on that sample.

For every table, mask kind and seed of ``impute_quality.py`` (its large tables sampled to
``--rows``), this runs ``auto`` once per ``--samples`` value (``score_sample``, the sample's cap)
and the scikit-learn defaults once (six; three on a table without categoricals), and prints per
setting: the cases where ``auto``'s numeric RMSE is within 1.02x of the best default's, the mean
ratio, ``auto``'s categorical error and its seconds (one thread); then the setting chosen
leave-one-table-out (most cases met, then the lowest mean ratio, then the fastest; chosen on the
other tables) and how it does on the table left out, beside the 5,000-row sample (the default).
``--tag`` adds a name to the settings, so runs of two code versions can be reported together
(``--report a.csv b.csv``). A table no larger than the smallest sample is left out of that choice
(every setting scores it on every row); a table run at two sizes (``--rows``) is two folds.

    python benchmarks/impute_score_sample.py [--samples 2000,5000] [--rows 3000]
        [--tables birds,tweets] [--seeds 0,1,2] [--tag=+v2] [--csv out.csv]

``--time-selection`` instead times the selection alone (``mask_and_score``, the candidates on the
sample; not the chosen method's final fit) on ``impute_knn.make_data``'s 100,000 x 20 table, each
``--samples`` value in turn, ``--repeats`` times (fastest and median; one thread unless
``--n-jobs -1``):

    python benchmarks/impute_score_sample.py --time-selection --repeats 4 --n-jobs 1
"""

from __future__ import annotations

import argparse
import functools
import statistics
import warnings

import impute_quality
import pandas as pd
from impute_knn import selection_seconds, selection_table
from impute_quality import SKLEARN, each_case, masked_case, score, sklearn_fill, timed

from clusterflow.impute import TableImputer

GOAL = 1.02
# The setting each held-out result is compared with: the fixed 5,000-row sample of before.
REFERENCE = "5000"


def run_case(
    name: str,
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    kind: str,
    seed: int,
    samples: list[int],
    tag: str = "",
) -> list[dict]:
    """``auto`` at every sample size against the best scikit-learn default, on one case."""
    truth, mask, masked = masked_case(frame, numeric, categorical, kind, seed)
    best = min(
        score(
            sklearn_fill(lambda m=make: m(seed), masked, numeric, categorical, with_categories=w),
            truth,
            mask,
            numeric,
            categorical,
        )[0]
        for make in SKLEARN.values()
        for w in ((False, True) if categorical else (False,))
    )
    records = []
    for rows in samples:
        imputer = TableImputer(
            numeric_columns=numeric,
            categorical_columns=categorical,
            random_state=seed,
            score_sample=rows,
        )
        filled, seconds = timed(lambda imputer=imputer: imputer.fit_transform(masked))
        rmse, error = score(filled, truth, mask, numeric, categorical)
        records.append(
            {
                "table": name,
                "rows": len(frame),
                "mask": kind,
                "seed": seed,
                "score_sample": rows,
                "setting": f"{rows}{tag}",
                "chose": imputer.method_,
                "rmse": rmse,
                "best_sk_rmse": best,
                "ratio": rmse / best,
                "error": error,
                "seconds": seconds,
            }
        )
    return records


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per setting (sample size and tag): cases met, mean ratio, categorical error and seconds."""
    grouped = results.groupby("setting")
    return pd.DataFrame(
        {
            "cases": grouped.size(),
            "met": grouped["ratio"].apply(lambda r: int((r <= GOAL).sum())),
            "mean_ratio": grouped["ratio"].mean(),
            "worst_ratio": grouped["ratio"].max(),
            "cat_error": grouped["error"].mean(),
            "seconds": grouped["seconds"].mean(),
        }
    )


def pick(results: pd.DataFrame) -> str:
    """Most cases met, then the lowest mean ratio, then the fastest."""
    table = summary(results).reset_index()
    table = table.assign(neg_met=-table["met"]).sort_values(["neg_met", "mean_ratio", "seconds"])
    return str(table["setting"].iloc[0])


def leave_one_table_out(results: pd.DataFrame) -> pd.DataFrame:
    """The setting chosen without each table (at its size), and how it does on that table."""
    # A table no larger than the smallest sample is scored on every row by every setting: it
    # cannot tell them apart. A table run at two sizes is two folds.
    telling = results[results["rows"] > results["score_sample"].min()]
    telling = telling.assign(fold=telling["table"] + "@" + telling["rows"].astype(str))
    if telling["fold"].nunique() < 2:
        return pd.DataFrame()
    rows = []
    for fold in telling["fold"].unique():
        chosen = pick(telling[telling["fold"] != fold])
        held = summary(telling[telling["fold"] == fold])
        row = {
            "held_out": fold,
            "chosen": chosen,
            "met": f"{int(held.loc[chosen, 'met'])}/{int(held.loc[chosen, 'cases'])}",
            "mean_ratio": held.loc[chosen, "mean_ratio"],
            "seconds": held.loc[chosen, "seconds"],
        }
        if REFERENCE in held.index:
            reference = held.loc[REFERENCE]
            row[f"met_at_{REFERENCE}"] = f"{int(reference['met'])}/{int(reference['cases'])}"
            row[f"mean_ratio_at_{REFERENCE}"] = reference["mean_ratio"]
            row[f"seconds_at_{REFERENCE}"] = reference["seconds"]
        rows.append(row)
    return pd.DataFrame(rows)


def time_selection(samples: list[int], repeats: int, n_jobs: int | None) -> None:
    """Print the seconds of mask-and-score alone at 100,000 x 20 for each sample size."""
    frame = selection_table()
    seconds: dict[int, list[float]] = {rows: [] for rows in samples}
    for repeat in range(repeats):
        # Alternate the order, so that neither size always runs first.
        for rows in samples if repeat % 2 == 0 else samples[::-1]:
            imputer = TableImputer(score_sample=rows, n_jobs=n_jobs)
            seconds[rows].append(selection_seconds(imputer, frame))
            print(f"  score_sample={rows}: {seconds[rows][-1]:.2f} s", flush=True)
    for rows, values in seconds.items():
        print(
            f"score_sample={rows}: selection fastest {min(values):.2f} s, "
            f"median {statistics.median(values):.2f} s (n_jobs={n_jobs})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="2000,5000", help="score_sample values")
    parser.add_argument("--rows", type=int, default=3000, help="sample the large tables to this")
    parser.add_argument("--tables", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--masks", default="mcar,mar")
    parser.add_argument("--csv", help="append every record here as each case finishes")
    parser.add_argument("--tag", default="", help="appended to each setting's name (code version)")
    parser.add_argument("--report", nargs="+", metavar="CSV", help="only report earlier --csv runs")
    parser.add_argument(
        "--time-selection", action="store_true", help="time mask-and-score at 100,000 x 20 only"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings per sample size")
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="--time-selection's threads (default: one, as TableImputer's None; -1: every core)",
    )
    args = parser.parse_args()
    if args.time_selection:
        time_selection(sorted(int(s) for s in args.samples.split(",")), args.repeats, args.n_jobs)
        return
    if args.report:
        frames = [pd.read_csv(path, dtype={"setting": str}) for path in args.report]
        report(pd.concat(frames, ignore_index=True))
        return
    warnings.filterwarnings("ignore")
    impute_quality.SAMPLE = args.rows
    samples = sorted(int(s) for s in args.samples.split(","))
    tables = impute_quality.load_tables()
    wanted = [t for t in args.tables.split(",") if t] or list(tables)
    run = functools.partial(run_case, samples=samples, tag=args.tag)
    report(each_case(tables, wanted, args.masks, args.seeds, run, args.csv))


def report(results: pd.DataFrame) -> None:
    """Print the summary over all cases, per table, and leave-one-table-out."""
    if "setting" not in results:
        results = results.assign(setting=results["score_sample"].astype(str))
    setting = results["setting"].fillna(results["score_sample"].astype(str)).astype(str)
    results = results.assign(setting=setting)
    floats = {"float_format": lambda v: f"{v:.3f}"}
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nall cases, per score_sample")
        print(summary(results).to_string(**floats))
        print("\nper table: cases met / mean ratio / seconds")
        per = results.groupby(["table", "rows", "setting"]).apply(
            lambda g: (
                f"{int((g['ratio'] <= GOAL).sum())}/{len(g)} "
                f"{g['ratio'].mean():.3f} {g['seconds'].mean():.2f}s"
            ),
            include_groups=False,
        )
        print(per.unstack().to_string())
        print("\nleave one table out (tables larger than the smallest sample)")
        folds = leave_one_table_out(results)
        print(folds.to_string(index=False, **floats) if len(folds) else "  no such table")


if __name__ == "__main__":
    main()
