"""The training flow with its data stages partitioned over a Dask cluster (``--dask-address``).

Same contract outputs as :func:`clusterflow_orchestration.flows.training.training_flow`;
``summary.json`` gains a ``dask`` object (workers, partitions, seconds per stage). Registration
and outputs are the same tasks.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from clusterflow.config import TrainConfig
from clusterflow.io import write_json
from clusterflow_orchestration.flows.training import run_id_now
from clusterflow_orchestration.tasks.outputs import outputs_task
from clusterflow_orchestration.tasks.partitioned import partitioned_task
from clusterflow_orchestration.tasks.register import register_task
from clusterflow_orchestration.tasks.settings import recorded_settings_task


@flow(name="clusterflow-train-dask", log_prints=True)
def partitioned_training_flow(
    config: TrainConfig,
    dask_address: str = "local",
    register_model: bool = True,
    partition_bytes: int | None = None,
) -> dict:
    """Train over partitions on the Dask cluster at ``dask_address``; return the run summary.

    Parameters
    ----------
    config : TrainConfig
        The data (a file, a folder or a glob of Parquet files), columns and stage settings.
    dask_address : str
        ``tcp://host:8786``, or ``local`` / ``local:N`` for a temporary LocalCluster.
    register_model : bool
        Log the run to MLflow and register the model (the challenger gate decides the alias).
    partition_bytes : int, optional
        Size of the CSV partitions (None: 4 per worker, 1 to 64 MiB each).
    """
    if config.settings_from:  # the drifted model's columns and settings, as training_flow does
        config = recorded_settings_task(config)
    run_id = run_id_now()
    out_dir = config.out_dir or str(Path("clusterflow-runs") / run_id)
    run = partitioned_task(config, dask_address, partition_bytes)
    registration = (
        register_task(config, run.snapshot, run.validated, run.imputed, run.embedded, run.swept)
        if register_model
        else None
    )
    summary = outputs_task(
        out_dir,
        run_id,
        run.snapshot,
        run.validated,
        run.imputed,
        run.embedded,
        run.swept,
        registration,
        stages=dask_stages(run),
    )
    summary["dask"] = run.dask
    write_json(summary, Path(out_dir) / "summary.json")
    return summary


DASK_STAGES = {
    "ingest": "read",
    "validate": "validate",
    "transform": "impute+embed",
    "sweep": "sweep",
    "assign": "assign",
}
"""The driver's steps (``dask.seconds``) under the names summary.json's ``stages`` uses."""


def dask_stages(run) -> dict:
    """Return summary.json's ``stages`` of a partitioned run: seconds and rows per driver step.

    A step's seconds are the driver's wall time, workers included; ``dask.worker_seconds``
    keeps the per-partition times.
    """
    rows = run.snapshot.n_rows
    valid = run.validated.n_valid
    stages = {}
    for step, name in DASK_STAGES.items():
        if step in run.dask["seconds"]:
            stages[name] = {
                "seconds": run.dask["seconds"][step],
                "rows_in": rows if step in ("ingest", "validate") else valid,
                "rows_out": rows if step == "ingest" else valid,
                "reused": False,
            }
    return stages
