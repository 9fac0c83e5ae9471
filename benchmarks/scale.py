"""Scale: the training stages in-process against partitioned on a 2-process Dask LocalCluster.

For each data set, in one run: wall time, peak resident memory of every process (the driver and
each worker), and whether the assignments are identical row for row. Each mode runs in a fresh
subprocess (so its peak memory is its own) with its own workspace (so both compute everything).

Data (generated once under ~/.cache/clusterflow-bench/scale/, seeded):
- ``tabular``: N rows (default 1,000,000), 6 numeric columns drawn around 6 centres, 1 categorical
  column, 3% of the numeric cells missing;
- ``text``: M rows (default 100,000) of the same tabular columns plus a ``text`` column drawn from
  the real short texts of ../shared/data (stackoverflow titles, banking77 queries, tweets);
- ``bounded``: 2,000,000 tabular rows with 12 numeric columns, run only on the Dask cluster with a
  per-worker memory limit below the size of the whole frame in pandas.

The registration and contract-output tasks are not part of this measure (they are the same code
either way); run e.g.

    nice -n 5 python benchmarks/scale.py --sets tabular,text,bounded
    python benchmarks/scale.py --sets tabular --tab-rows 200000     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "clusterflow-bench" / "scale"
SHARED = ROOT.parent / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def peak_mb() -> float:
    """This process's peak resident memory in MiB (``VmHWM``: unlike ``ru_maxrss`` it is not
    carried over from the process that spawned this one)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_tabular(n: int, numeric: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(6, numeric))
    which = rng.integers(0, 6, size=n)
    values = centres[which] + rng.normal(0, 1.0, size=(n, numeric))
    frame = pd.DataFrame(values, columns=[f"x{i}" for i in range(numeric)]).round(4)
    gaps = rng.random(frame.shape) < 0.03
    frame = frame.mask(gaps)
    frame.insert(0, "id", np.arange(n))
    frame["colour"] = np.array(["red", "green", "blue"])[(which + rng.integers(0, 2, n)) % 3]
    return frame


def real_texts() -> list[str]:
    texts: list[str] = []
    for name, column in (
        ("stackoverflow_titles.csv", "title"),
        ("banking77.csv", "text"),
        ("tweets.csv", "text"),
    ):
        path = SHARED / name
        if path.exists():
            frame = pd.read_csv(path)
            text_column = column if column in frame else frame.columns[1]
            texts += frame[text_column].dropna().astype(str).tolist()
    # One line per text: a bare "\r" inside a tweet is not quoted by to_csv (its line terminator
    # is "\n"), and reading the file back then fails ("Buffer overflow caught").
    texts = [" ".join(t.split()) for t in texts]
    return list(dict.fromkeys(t for t in texts if t))


def dataset(kind: str, args) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    if kind == "tabular":
        path = CACHE / f"tabular-{args.tab_rows}.csv"
        if not path.exists():
            make_tabular(args.tab_rows, 6, 0).to_csv(path, index=False)
    elif kind == "text":
        path = CACHE / f"text-{args.text_rows}-oneline.csv"  # older text-N.csv may not parse
        if not path.exists():
            frame = make_tabular(args.text_rows, 6, 1)
            texts = real_texts()
            rng = np.random.default_rng(1)
            frame["text"] = [texts[i] for i in rng.integers(0, len(texts), size=len(frame))]
            frame.to_csv(path, index=False)
    else:
        path = CACHE / f"bounded-{args.bounded_rows}.csv"
        if not path.exists():
            make_tabular(args.bounded_rows, 12, 2).to_csv(path, index=False)
    return path


def config_for(data: Path, workspace: Path, text: bool):
    from clusterflow.config import TrainConfig

    return TrainConfig(
        data=str(data),
        text_column="text" if text else None,
        id_column="id",
        workspace=str(workspace),
        impute={"method": "median"},
        sweep={"algorithms": ["kmeans"], "k_max": 10, "stability_resamples": 0},
    )


def run_mode(mode: str, data: Path, workspace: Path, text: bool, workers: int, limit: str | None):
    """One measurement, inside its own process: prints a JSON line."""
    from clusterflow.stages import embed, impute, ingest, sweep, validate
    from clusterflow.store import StageStore

    config = config_for(data, workspace, text)
    store = StageStore(workspace / "stages")
    started = time.perf_counter()
    out: dict = {"mode": mode}
    if mode == "inprocess":
        stages = {}
        t = time.perf_counter()
        snap = ingest(data, store)
        stages["ingest"] = time.perf_counter() - t
        t = time.perf_counter()
        validated = validate(snap, config, store)
        stages["validate"] = time.perf_counter() - t
        t = time.perf_counter()
        imputed = impute(validated, config, store)
        stages["impute"] = time.perf_counter() - t
        t = time.perf_counter()
        embedded = embed(validated, config, store)
        stages["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        swept = sweep(validated, imputed, embedded, config, store)
        stages["sweep+assign"] = time.perf_counter() - t
        out["labels"] = swept.labels_path
        out["peak_mb"] = {"process": round(peak_mb())}
        out["stages"] = {k: round(v, 1) for k, v in stages.items()}
        out["rows"] = snap.n_rows
    else:
        from clusterflow.distributed import DaskAddress, dask_client
        from clusterflow.partitioned import train_partitioned

        with dask_client(DaskAddress(None, workers), memory_limit=limit) as client:
            run = train_partitioned(config, store, client)
            worker_peaks = client.run(peak_mb)
        out["labels"] = run.swept.labels_path
        out["peak_mb"] = {"driver": round(peak_mb())} | {
            f"worker{i}": round(v) for i, v in enumerate(worker_peaks.values())
        }
        out["stages"] = run.dask["seconds"]
        out["partitions"] = run.dask["partitions"]
        out["worker_seconds"] = run.dask["worker_seconds"]
        out["rows"] = run.snapshot.n_rows
    out["seconds"] = round(time.perf_counter() - started, 1)
    print("RESULT " + json.dumps(out), flush=True)


def measure(mode, data, workspace, text, args, limit=None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--data",
        str(data),
        "--workspace",
        str(workspace),
        "--workers",
        str(args.workers),
    ]
    if text:
        cmd.append("--text")
    if limit:
        cmd += ["--memory-limit", limit]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{mode} on {data.name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall"] = round(wall, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="tabular,text,bounded")
    parser.add_argument("--tab-rows", type=int, default=1_000_000)
    parser.add_argument("--text-rows", type=int, default=100_000)
    parser.add_argument("--bounded-rows", type=int, default=2_000_000)
    parser.add_argument("--bounded-limit", default="700MiB", help="memory limit per worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--text", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_mode(
            args.child,
            Path(args.data),
            Path(args.workspace),
            args.text,
            args.workers,
            args.memory_limit,
        )
        return

    import tempfile

    base = Path(tempfile.mkdtemp(prefix="cf-scale-"))
    print(f"cores {os.cpu_count()} (shared with other work: compare within one run)")
    for kind in args.sets.split(","):
        data = dataset(kind, args)
        text = kind == "text"
        frame_mb = None
        if kind == "bounded":
            frame_mb = pd.read_csv(data).memory_usage(deep=True).sum() / 2**20
            res = measure("dask", data, base / f"{kind}-dask", text, args, args.bounded_limit)
            print(
                f"\n== {kind}: {res['rows']} rows, {data.stat().st_size / 2**20:.0f} MiB CSV, "
                f"{frame_mb:.0f} MiB as one pandas frame; worker limit {args.bounded_limit}"
            )
            print(
                f"dask: wall {res['wall']} s, {res['partitions']} partitions, peak MiB "
                f"{res['peak_mb']}, stages {res['stages']}"
            )
            continue
        a = measure("inprocess", data, base / f"{kind}-in", text, args)
        b = measure("dask", data, base / f"{kind}-dask", text, args)
        la, lb = np.load(a["labels"]), np.load(b["labels"])
        same = la.shape == lb.shape and bool(np.array_equal(la, lb))
        print(f"\n== {kind}: {a['rows']} rows ({data.name})")
        print("| mode | wall s | peak MiB per process | stages (s) |")
        print("|---|---|---|---|")
        print(f"| in-process | {a['wall']} | {a['peak_mb']} | {a['stages']} |")
        print(
            f"| dask {args.workers} processes, {b['partitions']} partitions | {b['wall']} | "
            f"{b['peak_mb']} | {b['stages']} |"
        )
        equal = int((la == lb).sum()) if la.shape == lb.shape else 0
        print(f"identical assignments: {same} ({equal} of {len(la)} rows equal)")
        print(f"per-partition worker seconds: {b['worker_seconds']}")


if __name__ == "__main__":
    main()
