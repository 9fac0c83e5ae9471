"""Time the sweep stage on the full birds data with the Gaussian mixtures' starts at 1, 2 and 3.

Ingest, validate, impute and embed run once (stage store in a temporary workspace); then the
sweep stage alone runs for each number of starts in turn, ``--repeats`` times, its cache cleared
before each run. Prints the seconds and the chosen clustering of every run.

    python benchmarks/sweep_gmm_starts.py [--data ../shared/data/birds.csv] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import clusterflow.sweep as sweep_module  # noqa: E402
from clusterflow import stages  # noqa: E402
from clusterflow.config import TrainConfig  # noqa: E402
from clusterflow.store import StageStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "birds.csv"))
    parser.add_argument("--text-column", default="remarks")
    parser.add_argument("--starts", default="1,3,2", help="comma list, run in this order")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cf-gmm-"))
    try:
        config = TrainConfig(data=args.data, text_column=args.text_column, workspace=str(work))
        store = StageStore(work / "store")
        snapshot = stages.ingest(config.data, store)
        validated = stages.validate(snapshot, config, store)
        imputed = stages.impute(validated, config, store, n_jobs=None)
        embedded = stages.embed(validated, config, store)
        default = sweep_module.ClusterSweep
        for _ in range(args.repeats):
            for starts in (int(v) for v in args.starts.split(",")):

                def with_starts(n: int = starts, **kw: object) -> object:
                    sweep = default(**kw)
                    sweep.gmm_n_init = n
                    return sweep

                # The stage builds its sweep through this name (clusterflow.stages.clustering).
                sweep_module.ClusterSweep = with_starts  # type: ignore[misc,assignment]
                shutil.rmtree(work / "store" / "sweep", ignore_errors=True)
                tic = time.perf_counter()
                swept = stages.sweep(validated, imputed, embedded, config, store)
                seconds = time.perf_counter() - tic
                print(f"starts {starts}: sweep {seconds:6.1f} s, {swept.algorithm} k={swept.k}")
        sweep_module.ClusterSweep = default  # type: ignore[misc]
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
