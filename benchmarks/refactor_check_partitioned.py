"""Digest of what the partitioned (Dask) training path writes, to show a refactor changes nothing.

Runs :func:`clusterflow.partitioned.train_partitioned` with small partitions on a one-worker,
one-thread Dask cluster in this process (two worker threads would share one OpenVINO encoder,
which refuses concurrent requests: "Infer Request is busy"; the command line's clusters are
processes of one thread). Two inputs: the bundled penguins with three rows made invalid
(quarantine) and the knn imputer, and the first 400 rows of the bundled birds demo with its
text column (MiniLM from the installed package). For each run it hashes every file the run
wrote except the timing record (``dask.json``), the plots and the skops files (they name
classes by module), the sweep table without its ``seconds`` column, and the stage handles'
fields without timings, with the temporary folder and the stage key (a hash of the code) taken
out of paths. Run before and after and compare:

    nice -n 5 .venv/bin/python benchmarks/refactor_check_partitioned.py --out /tmp/before.json
    nice -n 5 .venv/bin/python benchmarks/refactor_check_partitioned.py --out /tmp/after.json
    cmp /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SKIP_SUFFIXES = (".png", ".skops", ".html")


def _penguins(tmp: Path) -> tuple[Path, dict[str, Any]]:
    raw = pd.read_csv(ROOT / "data" / "penguins.csv")
    raw["bill_length_mm"] = raw["bill_length_mm"].astype(object)
    raw.loc[[5, 77, 200], "bill_length_mm"] = "not a number"
    path = tmp / "penguins.csv"
    raw.to_csv(path, index=False)
    return path, {
        "exclude_columns": ("species",),
        "impute": {"method": "knn"},
        "sweep": {"algorithms": ["kmeans", "gmm"], "k_max": 5, "stability_resamples": 1},
    }


def _birds(tmp: Path) -> tuple[Path, dict[str, Any]]:
    raw = pd.read_csv(ROOT / "data" / "birds_demo.csv").head(400)
    path = tmp / "birds.csv"
    raw.to_csv(path, index=False)
    return path, {
        "text_column": "remarks",
        "id_column": "record_id",
        "exclude_columns": ("date", "phase_of_flt"),
        "sweep": {"algorithms": ["kmeans", "agglomerative"], "k_max": 6},
    }


def _file_digest(path: Path) -> str:
    if path.name == "sweep.csv":
        table = pd.read_csv(path).drop(columns=["seconds"])
        return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()
    if path.suffix == ".npy":
        return hashlib.sha256(np.load(path).tobytes()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clean(value: Any, tmp: Path, key: str) -> Any:
    """Drop timings; take the temporary folder and the stage key (it hashes the code) out."""
    if isinstance(value, dict):
        return {k: _clean(v, tmp, key) for k, v in sorted(value.items()) if k != "seconds"}
    if isinstance(value, list | tuple):
        return [_clean(v, tmp, key) for v in value]
    if isinstance(value, str):
        return value.replace(str(tmp), "<tmp>").replace(key, "<key>")
    return value


def run_case(make: Any, client: Any) -> dict[str, Any]:
    from clusterflow.config import TrainConfig
    from clusterflow.partitioned import train_partitioned
    from clusterflow.store import StageStore

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data, options = make(tmp)
        config = TrainConfig(data=str(data), workspace=str(tmp / "ws"), **options)
        run = train_partitioned(
            config, StageStore(tmp / "ws" / "stages"), client, partition_bytes=6000
        )
        folder = Path(run.swept.labels_path).parent
        files = {
            str(p.relative_to(folder)): _file_digest(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "dask.json" and p.suffix not in SKIP_SUFFIXES
        }
        handles = {
            name: _clean(dataclasses.asdict(getattr(run, name)), tmp, folder.name)
            for name in ("snapshot", "validated", "imputed", "embedded", "swept")
            if getattr(run, name) is not None
        }
        return {"partitions": run.dask["partitions"], "files": files, "handles": handles}


def main() -> None:
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    # A worker thread importing transformers' lazy submodules beside the driver can find one
    # half made ("cannot import name 'AutoTokenizer'"): import them here first.
    from transformers import AutoModel, AutoTokenizer  # noqa: F401

    with (
        LocalCluster(
            n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for name, make in (("penguins", _penguins), ("birds_text", _birds)):
            case = run_case(make, client)
            text = json.dumps(case, sort_keys=True, default=str)
            report[name] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), **case}
            print(
                f"{name:12s} {case['partitions']} partitions, {len(case['files'])} files "
                f"{report[name]['sha256']}",
                flush=True,
            )
    args.out.write_text(json.dumps(report, sort_keys=True, indent=1, default=str) + "\n")
    print(f"digest file {args.out}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
