"""Does leaving the Gaussian mixtures out where the silhouette proposes change the rule's choice?

Where the likelihood's reduced view holds less than ``MIN_EXPLAINED`` of the variance, only
k-means and agglomerative candidates propose (by the silhouette), so the sweep skips the
mixtures unless no partition is usable. This applies the rule to the seeds benchmark's candidate
tables (seeds 0, 1 and 2, cached by ``seeds.py``; the harness fits every family) with and without
the mixtures' rows, and prints per sweep whether the sweep skips them (a k-means or agglomerative
candidate passes every viability check on its own), whether the choice and the runner-ups stay
without them, and the mixtures' share of the sweep's time.

    python benchmarks/quality/skip_mixtures.py [--sets birds,digits]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd  # noqa: E402

from benchmarks.quality.datasets import LOADERS  # noqa: E402
from benchmarks.quality.run import markdown  # noqa: E402
from benchmarks.quality.seeds import SEEDS, seeded  # noqa: E402
from clusterflow.cluster.evidence import MIN_EXPLAINED  # noqa: E402
from clusterflow.cluster.selection import Alternative, partition_stands, select  # noqa: E402


def _name(alt: Alternative | None) -> str:
    return "-" if alt is None else f"{alt.algorithm} {alt.k}"


def outcome(table: pd.DataFrame) -> tuple[str, str, str]:
    """The rule's choice, coarser and finer runner-up on one candidate table."""
    s = select(table, k_min=2, k_max=int(table["k_max"].iloc[0]))
    return _name(s.chosen), _name(s.coarser), _name(s.finer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="", help="comma list of sets (default: all)")
    args = parser.parse_args()
    rows = []
    for name in args.sets.split(",") if args.sets else list(LOADERS):
        print(f"collecting {name} ...", file=sys.stderr, flush=True)
        ds = LOADERS[name]()
        for seed in SEEDS:
            table, _ = seeded(ds, seed)
            if float(table["evidence_share"].iloc[0]) >= MIN_EXPLAINED:
                continue  # the evidence proposes: the mixtures are fitted
            mixtures = table["algorithm"] == "gmm"
            full, without = outcome(table), outcome(table[~mixtures])
            k_max = int(table["k_max"].iloc[0])
            rows.append(
                {
                    "set": name,
                    "seed": seed,
                    "skipped": partition_stands(table[~mixtures], k_min=2, k_max=k_max),
                    "chosen": full[0],
                    "same choice": full[0] == without[0],
                    "runner-ups": ", ".join(full[1:]),
                    "runner-ups without mixtures": ", ".join(without[1:]),
                    "mixtures' share of the time": table.loc[mixtures, "seconds"].sum()
                    / table["seconds"].sum(),
                }
            )
    out = pd.DataFrame(rows)
    print(markdown(out))
    share = out["mixtures' share of the time"]
    moved = int((out["runner-ups"] != out["runner-ups without mixtures"]).sum())
    print(
        f"\nthe sweep skips the mixtures in {int(out['skipped'].sum())} of {len(out)}; "
        f"{int(out['same choice'].sum())} of {len(out)} sweeps keep their choice; "
        f"runner-ups change in {moved}; "
        f"the mixtures take {share.min():.0%}-{share.max():.0%} of the time"
    )


if __name__ == "__main__":
    main()
