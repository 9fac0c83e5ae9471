"""What every training pays for its files: loading the fitted components and drawing the plots.

Trains the default model on the bundled penguins table through the stages (no Prefect, no
MLflow), then times, alternately and in one run:

- loading each fitted component of the model: the earlier two passes (``get_untrusted_types``,
  then ``load`` trusting what it listed) against :func:`clusterflow.component_io.load_component`
  (one ``load`` that audits against the allowed types);
- the sweep figure and the cluster map: the earlier ``tight_layout`` against the fixed margins of
  :mod:`clusterflow.plots`.

A training loads the imputer several times (the sweep stage, the dump's load-back check, the
challenger, the logged model's check, the served model) and draws both figures once::

    python benchmarks/artifact_io.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clusterflow import plots, stages
from clusterflow.component_io import _skops_io, load_component
from clusterflow.config import TrainConfig
from clusterflow.model import ClusterModel
from clusterflow.store import StageStore

PENGUINS = Path(__file__).resolve().parents[1] / "data" / "penguins.csv"


def train(folder: Path) -> tuple[stages.Swept, np.ndarray]:
    """Train the default penguins model through the stages; return the sweep and its features."""
    config = TrainConfig(
        data=str(PENGUINS), exclude_columns=("species", "year"), workspace=str(folder)
    )
    store = StageStore(folder / "stages")
    snapshot = stages.ingest(PENGUINS, store)
    validated = stages.validate(snapshot, config, store)
    imputed = stages.impute(validated, config, store)
    swept = stages.sweep(validated, imputed, None, config, store)
    model = ClusterModel.load(swept.model_dir)
    _, _, features = model.feature_matrix(pd.read_parquet(validated.valid_path))
    return swept, features


def two_pass_load(stem: Path) -> object:
    """The earlier load: list the untrusted types, then load trusting exactly those."""
    sio = _skops_io()
    path = stem.with_suffix(".skops")
    return sio.load(path, trusted=list(sio.get_untrusted_types(file=path)))


def tight_save(fig: plt.Figure, path: str | Path, **_margins: float) -> Path:
    """The earlier ``plots._save``: ``tight_layout`` measures every label before drawing."""
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def alternate(pair: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time each callable of ``pair`` ``repeats`` times, alternating, after one warm-up each."""
    for run in pair.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in pair}
    for _ in range(repeats):
        for name, run in pair.items():
            tic = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - tic)
    return times


def report(what: str, times: dict[str, list[float]]) -> None:
    """Print fastest and median of each variant, and the ratio of the fastest."""
    (old, old_t), (new, new_t) = times.items()
    print(
        f"| {what} | {min(old_t):.3f} / {statistics.median(old_t):.3f} "
        f"| {min(new_t):.3f} / {statistics.median(new_t):.3f} "
        f"| {min(new_t) / min(old_t):.2f}x |"
    )


def main() -> None:
    """Train once, then time the loads and the plots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cf-artifact-io-") as tmp:
        folder = Path(tmp)
        tic = time.perf_counter()
        swept, features = train(folder / "ws")
        seconds = time.perf_counter() - tic
        print(f"trained penguins ({swept.algorithm}, k={swept.k}) in {seconds:.1f} s")
        model_dir = Path(swept.model_dir)
        print(
            "\n| step | before: fastest / median s | after: fastest / median s | after / before |"
        )
        print("|---|---|---|---|")
        for file in sorted(model_dir.glob("*.skops")):
            stem = file.with_suffix("")
            times = alternate(
                {
                    "two passes": lambda s=stem: two_pass_load(s),
                    "one pass": lambda s=stem: load_component(s, "skops"),
                },
                args.repeats,
            )
            report(f"load {file.name} ({file.stat().st_size / 1e6:.1f} MB)", times)
        results = pd.read_csv(swept.results_path)
        labels = np.load(swept.labels_path)
        fixed = plots._save
        for name, draw in (
            ("sweep figure", lambda: plots.plot_sweep(results, folder / "sweep.png")),
            ("cluster map", lambda: plots.plot_cluster_map(features, labels, folder / "map.png")),
        ):

            def before(draw=draw):
                plots._save = tight_save
                try:
                    return draw()
                finally:
                    plots._save = fixed

            report(name, alternate({"tight_layout": before, "fixed margins": draw}, args.repeats))


if __name__ == "__main__":
    main()
