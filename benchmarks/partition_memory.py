"""How much memory a worker needs per byte of the CSV partition it validates (issue 17).

Writes a seeded tabular CSV (the ``bounded`` shape of ``benchmarks/scale.py``: 12 numeric columns
with 3% gaps, an id and a categorical), cuts it into partitions of several sizes and, for each
size in a fresh process, validates the first partition exactly as a Dask worker does
(``clusterflow.partitioned._workers._validate_partition``: read the byte range, check every row,
write the valid rows and the quarantine as Parquet). Prints the peak resident memory above the
process's baseline after its imports, per MiB of CSV. The largest ratio is
``clusterflow.partitioned._plan.GROWTH_PER_CSV_BYTE``, which sizes partitions under a worker
memory limit.

    python benchmarks/partition_memory.py [--rows 1500000] [--sizes 8,16,32,64,128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "clusterflow-bench" / "scale"


def _peak_mib() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it is not carried
    over from the parent that spawned the process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(path: str, mib: float) -> None:
    from clusterflow.partitioned._plan import plan_partitions
    from clusterflow.partitioned._workers import _validate_partition
    from clusterflow.schema import infer_roles

    parts = plan_partitions(path, partition_bytes=int(mib * (1 << 20)))
    sample = pd.read_csv(path, nrows=1000)
    roles = infer_roles(sample, id_column="id")
    kinds = {
        c: ("number" if pd.api.types.is_numeric_dtype(sample[c]) else "text")
        for c in sample.columns
    }
    folder = tempfile.mkdtemp(prefix="cf-partmem-")
    for sub in ("valid", "quarantine"):
        os.makedirs(os.path.join(folder, sub))
    base = _peak_mib()
    out = _validate_partition(parts[0], 0, 0, kinds, roles.to_dict(), False, folder, "x.csv")
    growth = _peak_mib() - base
    size = (parts[0].stop - parts[0].start) / (1 << 20)
    print(
        json.dumps(
            {
                "csv_mib": size,
                "rows": out["rows"],
                "baseline_mib": base,
                "growth_mib": growth,
                "growth_per_csv_byte": growth / size,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--sizes", default="8,16,32,64,128", help="partition sizes in MiB")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], float(args.child[1]))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.scale import make_tabular

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"partition-memory-{args.rows}.csv"
    if not path.exists():
        make_tabular(args.rows, 12, 2).to_csv(path, index=False)
    print(f"{path.name}: {path.stat().st_size / (1 << 20):.0f} MiB")
    print("| partition MiB | rows | baseline MiB | peak growth MiB | growth per CSV byte |")
    print("|---|---|---|---|---|")
    for mib in args.sizes.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(path), mib],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"| {r['csv_mib']:.0f} | {r['rows']:,} | {r['baseline_mib']:.0f} | "
            f"{r['growth_mib']:.0f} | {r['growth_per_csv_byte']:.1f} |"
        )


if __name__ == "__main__":
    main()
