"""Does a k range wider than the default generalise? Leave-one-dataset-out on a wide sweep per set.

The default range tops out at ``default_k_max(n) = clip(floor(sqrt(n / 2)), 10, 100)``. Two sets
of the harness (banking77: 77 intents, k_max 38; leaves: 32 species, k_max 30) have their true k
above it, so no rule on the default grid can reach their target. Raising the top is a constant
of the rule like any other: it may let those sets reach their k and let others over-split.

Per set this runs one sweep with ``k_max = 2 x default_k_max(n)`` on clusterflow's features
(cached under ``~/.cache/clusterflow-bench/quality/wide-*``), then applies the rule with the top
at ``factor x default_k_max(n)`` for every factor of the grid, on the same candidates (the
candidates above the top dropped). Prints, per factor, the sets meeting their target and the
mean ARI, then the leave-one-dataset-out table: for each held-out set, the factor best on the
others (most targets met, then mean ARI; ties to 1.0) and its ARI on the held-out set.

    python benchmarks/quality/k_range.py             # all sets (first run: ~40 min, 2 cores)
    python benchmarks/quality/k_range.py --sets iris,banking77
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd  # noqa: E402

from benchmarks.quality.collect import (  # noqa: E402
    CACHE,
    VERSION,
    candidate_table,
    collect,
    embeddings,
    features,
    imputed,
    tag,
)
from benchmarks.quality.datasets import LOADERS, Dataset  # noqa: E402
from benchmarks.quality.run import _lodo, markdown, target  # noqa: E402
from clusterflow.cluster.selection import SelectionParams, select  # noqa: E402
from clusterflow.sweep import default_k_max  # noqa: E402

WIDEST = 2.0
FACTORS = [0.75, 1.0, 1.25, 1.5, 2.0]


def wide_table(ds: Dataset) -> pd.DataFrame:
    """The sweep's candidate table (with ARI) for k up to ``WIDEST`` x the default top (cached)."""
    path = CACHE / "quality" / f"wide-{VERSION}{tag(ds)}-{ds.name}-x{WIDEST}.csv"
    if not path.exists():
        X = features(ds, imputed(ds), embeddings(ds))
        top = min(int(round(WIDEST * default_k_max(len(X)))), len(X) - 1)
        table, seconds, _ = candidate_table(X, ds.labels, k_max=top)
        table["seconds_total"] = seconds
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    return pd.read_csv(path)


def rule_at(table: pd.DataFrame, n_rows: int, factor: float) -> pd.Series:
    """The candidate the rule chooses with the top of the range at ``factor`` x the default."""
    k_max = max(2, min(int(round(factor * default_k_max(n_rows))), n_rows - 1))
    within = table[table["k"] <= k_max]
    return within.loc[select(within, k_min=2, k_max=k_max, params=SelectionParams()).chosen.index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="", help="comma list of sets (default: all)")
    args = parser.parse_args()
    names = args.sets.split(",") if args.sets else list(LOADERS)
    metas, picks = {}, {}
    for name in names:
        print(f"collecting {name} ...", file=sys.stderr, flush=True)
        ds = LOADERS[name]()
        metas[name] = collect(ds)
        table = wide_table(ds)
        picks[name] = {f: rule_at(table, len(ds.table), f) for f in FACTORS}
    rows = []
    for name, by_factor in picks.items():
        row = {"set": name, "K": metas[name]["true_k"], "target": target(metas[name])}
        for f, pick in by_factor.items():
            edge = (
                " (edge)"
                if int(pick["k"]) == int(round(f * default_k_max(metas[name]["rows"])))
                else ""
            )
            row[f"x{f}"] = f"{pick['algorithm']} {int(pick['k'])}{edge}: {pick['ari']:.3f}"
        rows.append(row)
    print("## The rule with the top of the k range at factor x default_k_max(n)\n")
    print(markdown(pd.DataFrame(rows)))
    summary = []
    for f in FACTORS:
        aris = [float(picks[n][f]["ari"]) for n in names]
        met = sum(a >= target(metas[n]) - 1e-9 for n, a in zip(names, aris, strict=True))
        summary.append(
            {"factor": f, "targets met": f"{met}/{len(names)}", "mean ARI": sum(aris) / len(aris)}
        )
    print("\n" + markdown(pd.DataFrame(summary)))
    folds = _lodo(
        names,
        FACTORS,
        1.0,
        lambda n, f: float(picks[n][f]["ari"]),
        lambda n: target(metas[n]),
    )
    lodo = pd.DataFrame(folds)
    print(
        "\n## Leave-one-dataset-out: the factor chosen on the other sets, scored on the "
        "held-out one\n"
    )
    print(markdown(lodo))
    print(
        f"\nheld-out mean ARI {lodo['held-out ARI'].mean():.3f} against the default's "
        f"{lodo['default ARI'].mean():.3f}; choices: "
        f"{lodo['chosen on others'].value_counts().to_dict()}"
    )


if __name__ == "__main__":
    main()
