"""The forest candidate's settings: rounds and the share of columns per split, leave-one-table-out.

The ``forest`` candidate (chained extra-trees, MissForest-style) is fitted alone, under each
setting, on the 54 cases of ``impute_quality.py`` (9 tables x MCAR/MAR x 3 seeds, the same masks).
Its standardised RMSE on the hidden numeric cells is divided by the reference setting's on the
same case (all columns per split, two rounds), and averaged per table. Printed: per setting the
mean ratio, the cases more than 2% worse or better, the categorical error rate and the seconds;
per table the mean ratio; and, for ``max_features`` (two rounds, 20 trees, leaves of 2), the
leave-one-table-out choice: the value with the lowest mean ratio on the other 8 tables, scored
on the held-out one. ``--rounds 3`` (the default) adds the candidate's earlier setting: all
columns, three rounds. Two rounds on 60% of the columns, chosen here, is the candidate's setting
now (see the README's benchmark table).

``--shares 0.6`` runs only the adopted share beside the reference. ``--trees 5,10`` adds the
adopted setting (60% of the columns, two rounds) with fewer trees than the 20 it was chosen
with, and a second leave-one-table-out: on the other 8 tables, the fewest trees whose mean ratio
to 20 trees is at most ``--tolerance`` (1.01: a forest at most 1% worse), scored on the held-out
table. Fewer trees cost less in the selection (``auto`` fits the forest on up to 2,000 rows every
masking round) and make the saved imputer smaller. ``--trees 5,10,15`` chose 15 in all 9 folds,
the candidate's count now; every other setting here is still run with 20 trees, as it was chosen.

``--time-selection`` times what the tree count costs ``auto`` at 100,000 x 20 on one thread
(the training flow's setting beside the embedder): the selection alone (mask-and-score, every
candidate) with 20 trees and with the adopted count, and the chosen ``iterative`` imputer's
fit + transform, alternately in one process (the VM's speed drifts between runs; only the tree
count differs between the two selections). The overhead is selection / iterative, per repeat.

    python benchmarks/impute_forest.py [--tables penguins,mammals] [--rounds 3]
        [--shares 0.6 --rounds "" --trees 5,10]
    python benchmarks/impute_forest.py --time-selection --repeats 5
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from impute_knn import selection_seconds, selection_table
from impute_quality import load_tables, masked_case, score

import clusterflow.impute._iterative as forest_module
from clusterflow.impute import TableImputer

SHARES = [0.5, 0.6, 0.7, 0.8, 1.0]
REFERENCE = "mf1.0 r2"


# The candidate's own settings: run_cases changes the module's constants and puts these back.
DEFAULTS = {
    name: getattr(forest_module, name)
    for name in ("_TREE_MAX_FEATURES", "_TREE_MAX_ITER", "_TREE_COUNT")
}
ADOPTED_SHARE = DEFAULTS["_TREE_MAX_FEATURES"]
ADOPTED = f"mf{ADOPTED_SHARE} r{DEFAULTS['_TREE_MAX_ITER']}"
# The trees of every setting but --trees': the count the shares and rounds were chosen with.
FULL_TREES = 20
HELD_OUT = f"held-out ratio to {FULL_TREES} trees"


def settings(
    shares: list[float], extra_rounds: list[int], trees: list[int]
) -> dict[str, tuple[float, int, int]]:
    """``name -> (max_features, rounds, trees)``."""
    count = FULL_TREES
    out = {f"mf{share} r2": (share, 2, count) for share in shares}
    out.update({f"mf1.0 r{rounds}": (1.0, rounds, count) for rounds in extra_rounds})
    rounds = DEFAULTS["_TREE_MAX_ITER"]
    out.update({f"{ADOPTED} t{n}": (ADOPTED_SHARE, rounds, n) for n in trees})
    return out


@contextmanager
def forest_constants(**values: float) -> Iterator[None]:
    """Set the forest's module constants (named as in ``DEFAULTS``) inside the block only."""
    try:
        for name, value in values.items():
            setattr(forest_module, name, value)
        yield
    finally:
        for name, value in DEFAULTS.items():
            setattr(forest_module, name, value)


def run_cases(tables: dict, names: list[str], grid: dict) -> pd.DataFrame:
    """The forest alone under every setting of ``grid`` on every case of ``names``."""
    rows = []
    for name in names:
        frame, numeric, categorical = tables[name]
        for kind in ("mcar", "mar"):
            for seed in (0, 1, 2):
                truth, mask, masked = masked_case(frame, numeric, categorical, kind, seed)
                for label, (share, rounds, trees) in grid.items():
                    imputer = TableImputer(
                        method="forest",
                        numeric_columns=numeric,
                        categorical_columns=categorical,
                        random_state=seed,
                    )
                    with forest_constants(
                        _TREE_MAX_FEATURES=share, _TREE_MAX_ITER=rounds, _TREE_COUNT=trees
                    ):
                        tic = time.perf_counter()
                        filled = imputer.fit_transform(masked)
                        seconds = time.perf_counter() - tic
                    rmse, error = score(filled, truth, mask, numeric, categorical)
                    rows.append(
                        {"table": name, "case": f"{kind} {seed}", "setting": label,
                         "rmse": rmse, "error": error, "seconds": seconds}
                    )  # fmt: skip
    return pd.DataFrame(rows)


def leave_one_table_out(per_table: pd.DataFrame) -> pd.DataFrame:
    """For each table: the two-round share best on the others, and its ratio on this table."""
    shares = per_table.loc[[s for s in per_table.index if s.endswith(" r2")]]
    rows = []
    for held in shares.columns:
        chosen = shares.drop(columns=held).mean(axis=1).idxmin()
        rows.append({"held out": held, "chosen on others": chosen,
                     "held-out ratio": shares.loc[chosen, held]})  # fmt: skip
    return pd.DataFrame(rows)


def ratios_to(results: pd.DataFrame, setting: str) -> pd.Series:
    """Each case's RMSE divided by ``setting``'s on the same table and case."""
    base = results[results["setting"] == setting].set_index(["table", "case"])["rmse"]
    keys = list(zip(results["table"], results["case"], strict=True))
    return results["rmse"] / base.loc[keys].to_numpy()


def fewest_trees(results: pd.DataFrame, trees: list[int], tolerance: float) -> pd.DataFrame:
    """For each table: the fewest trees within ``tolerance`` of 20 on the others, held out.

    The ratios here are to the adopted share and rounds with ``FULL_TREES`` (20) trees, case by
    case, then averaged per table.
    """
    to_adopted = results.assign(ratio=ratios_to(results, ADOPTED))
    per_table = to_adopted.groupby(["setting", "table"])["ratio"].mean().unstack()
    counts = sorted({*trees, FULL_TREES})
    names = {n: f"{ADOPTED} t{n}" if n in trees else ADOPTED for n in counts}
    relative = pd.DataFrame({n: per_table.loc[names[n]] for n in counts}).T
    print(f"\nmean RMSE ratio to {FULL_TREES} trees per table\n" + relative.round(3).to_string())
    rows = []
    for held in relative.columns:
        others = relative.drop(columns=held).mean(axis=1)
        within = [n for n in relative.index if others[n] <= tolerance]
        chosen = min(within) if within else FULL_TREES
        rows.append({"held out": held, "trees chosen on others": chosen,
                     HELD_OUT: relative.loc[chosen, held]})  # fmt: skip
    return pd.DataFrame(rows)


def time_selection(repeats: int) -> None:
    """Print the selection's seconds with 20 trees and the adopted count, and the overhead."""
    frame = selection_table()
    adopted = DEFAULTS["_TREE_COUNT"]
    if adopted == FULL_TREES:
        raise SystemExit(f"the candidate has {FULL_TREES} trees: there is no other count to time")
    seconds: dict[str, list[float]] = {
        "iterative": [],
        **{f"{n} trees": [] for n in (FULL_TREES, adopted)},
    }
    for repeat in range(repeats):
        # Alternate the order, so that neither count always runs first.
        for trees in (FULL_TREES, adopted) if repeat % 2 == 0 else (adopted, FULL_TREES):
            with forest_constants(_TREE_COUNT=trees):
                seconds[f"{trees} trees"].append(selection_seconds(TableImputer(n_jobs=1), frame))
        tic = time.perf_counter()
        TableImputer(method="iterative", n_jobs=1).fit_transform(frame)
        seconds["iterative"].append(time.perf_counter() - tic)
        print("  " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()), flush=True)
    for name in (f"{FULL_TREES} trees", f"{adopted} trees"):
        overhead = [s / it for s, it in zip(seconds[name], seconds["iterative"], strict=True)]
        print(
            f"selection with {name}: median {statistics.median(seconds[name]):.2f} s, fastest "
            f"{min(seconds[name]):.2f} s; per repeat / the chosen iterative's fit + transform: "
            f"median {statistics.median(overhead):+.1%}, "
            f"{', '.join(f'{o:+.1%}' for o in overhead)}"
        )
    its = seconds["iterative"]
    print(
        f"iterative fit + transform: median {statistics.median(its):.2f} s, "
        f"fastest {min(its):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="")
    parser.add_argument("--rounds", default="3", help="comma list of extra round counts")
    parser.add_argument(
        "--shares",
        default=",".join(map(str, SHARES)),
        help="comma list of column shares per split (1.0, the reference, is always run)",
    )
    parser.add_argument("--trees", default="", help=f"comma list of tree counts below {FULL_TREES}")
    parser.add_argument("--tolerance", type=float, default=1.01, help="for --trees")
    parser.add_argument(
        "--time-selection", action="store_true", help="time auto's selection at 100k x 20 instead"
    )
    parser.add_argument("--repeats", type=int, default=5, help="for --time-selection")
    args = parser.parse_args()
    if args.time_selection:
        time_selection(args.repeats)
        return
    logging.getLogger("clusterflow.impute").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    tables = load_tables()
    names = [t for t in args.tables.split(",") if t] or list(tables)
    extra = [int(r) for r in args.rounds.split(",") if r]
    trees = [int(n) for n in args.trees.split(",") if n]
    shares = sorted({float(x) for x in args.shares.split(",") if x} | {1.0, ADOPTED_SHARE})
    results = run_cases(tables, names, settings(shares, extra, trees))
    results["ratio"] = ratios_to(results, REFERENCE)
    summary = results.groupby("setting").agg(
        mean_ratio=("ratio", "mean"),
        worse_2pct=("ratio", lambda r: int((r > 1.02).sum())),
        better_2pct=("ratio", lambda r: int((r < 0.98).sum())),
        categorical_error=("error", "mean"),
        seconds=("seconds", "sum"),
    )
    print(summary.round(3).to_string())
    per_table = results.groupby(["setting", "table"])["ratio"].mean().unstack()
    print("\nmean RMSE ratio per table\n" + per_table.round(3).to_string())
    if per_table.shape[1] < 2:
        print("\nleave-one-table-out needs at least two tables")
        return
    lotto = leave_one_table_out(per_table)
    print("\n" + lotto.round(3).to_string(index=False))
    print(f"leave-one-table-out mean held-out ratio {lotto['held-out ratio'].mean():.4f}")
    if trees:
        chosen = fewest_trees(results, trees, args.tolerance)
        print("\n" + chosen.round(3).to_string(index=False))
        held = chosen[HELD_OUT]
        print(f"fewest trees: mean held-out ratio {held.mean():.4f}, worst {held.max():.4f}")


if __name__ == "__main__":
    main()
