"""How many subsample refits per candidate? The rule under seeds 0-2 with 3 and with 6 refits.

The refits give each candidate its stability and its prediction strength (the worst cluster's
share of pairs kept together), which the rule thresholds (0.5 and 0.85). With few refits both are
noisy, and a candidate near a threshold is in or out by the seed. This reads the seeds
benchmark's candidate tables for each count (run ``seeds.py`` first, once per count, with
``CLUSTERFLOW_BENCH_RESAMPLES``), and prints per set and count the targets met over the three
seeds, the mean ARI, the agreement between the seeds' choices and the sweep's seconds; then the
count chosen leave-one-dataset-out (most targets met on the other sets, then mean ARI, ties to
the fewer refits) and its score on the set left out.

    CLUSTERFLOW_BENCH_RESAMPLES=3 python benchmarks/quality/seeds.py     # and =10; 6 is the default
    python benchmarks/quality/resamples.py [--counts 3,6] [--sets iris,wine]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.quality.datasets import LOADERS, Dataset  # noqa: E402
from benchmarks.quality.run import markdown  # noqa: E402
from benchmarks.quality.seeds import SEEDS, rule_over_seeds  # noqa: E402


def outcome(ds: Dataset, resamples: int) -> dict:
    """Targets met, mean ARI, agreement and seconds of the rule under every seed."""
    found = rule_over_seeds(ds, resamples)
    return {
        "target": found["target"],
        "met": sum(a >= found["target"] - 1e-9 for a in found["aris"]),
        "ari": float(np.mean(found["aris"])),
        "agreement": found["agreement"],
        "seconds": found["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="3,6", help="comma list of refit counts")
    parser.add_argument("--sets", default="", help="comma list of sets (default: all)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    names = args.sets.split(",") if args.sets else list(LOADERS)
    scores: dict[tuple[str, int], dict] = {}
    rows = []
    for name in names:
        print(f"reading {name} ...", file=sys.stderr, flush=True)
        ds = LOADERS[name]()
        row: dict = {"set": name}
        for r in counts:
            s = scores[name, r] = outcome(ds, r)
            row["target"] = s["target"]
            row[f"{r}: met"] = f"{s['met']}/{len(SEEDS)}"
            row[f"{r}: ARI"] = s["ari"]
            row[f"{r}: agreement"] = s["agreement"]
            row[f"{r}: seconds"] = s["seconds"]
        rows.append(row)
    print(f"## Subsample refits per candidate: {counts}, seeds {SEEDS}\n")
    print(markdown(pd.DataFrame(rows)))
    print()
    for r in counts:
        total = [scores[n, r] for n in names]
        print(
            f"{r} refits: targets met {sum(s['met'] for s in total)}/{len(SEEDS) * len(names)}, "
            f"mean ARI {np.mean([s['ari'] for s in total]):.3f}, mean agreement "
            f"{np.mean([s['agreement'] for s in total]):.3f}, sweep seconds "
            f"{sum(s['seconds'] for s in total):.0f}"
        )
    folds = []
    for held in names:
        rest = [n for n in names if n != held]

        def merit(r: int, rest: list[str] = rest) -> tuple[int, float, int]:
            return (
                sum(scores[n, r]["met"] for n in rest),
                float(np.mean([scores[n, r]["ari"] for n in rest])),
                -r,
            )

        pick = max(counts, key=merit)
        folds.append({"held out": held, "chosen": pick, **scores[held, pick]})
    lodo = pd.DataFrame(folds)
    print(
        f"\nleave one set out: chosen {lodo['chosen'].value_counts().to_dict()}; held out: "
        f"targets met {int(lodo['met'].sum())}/{len(SEEDS) * len(names)}, mean ARI "
        f"{lodo['ari'].mean():.3f}, mean agreement {lodo['agreement'].mean():.3f}"
    )


if __name__ == "__main__":
    main()
