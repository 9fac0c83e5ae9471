"""Monitoring: drift of a new batch against the champion's reference; emits the retrain event.

load the champion (and its MLflow run) -> read the batch -> validate, impute, embed and score it
the champion's way and compare it with the reference sample the champion carries -> write
drift.json, drift_report.html and quarantine.csv, publish a markdown artifact, log the drift
metrics to the champion's run -> on drift, emit ``clusterflow.drift.detected``.

Drift is a finding, not a failure: the flow completes either way; only unreadable input, a
missing model or a batch with no valid row fail it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from clusterflow.config import MonitorConfig
from clusterflow_orchestration.flows.training import run_id_now
from clusterflow_orchestration.tasks.monitor import (
    drift_partitioned_task,
    drift_task,
    emit_drift_task,
    report_task,
)
from clusterflow_orchestration.tasks.score import load_model_task, read_batch_task


@flow(name="clusterflow-monitor", log_prints=True)
def monitoring_flow(config: MonitorConfig, dask_address: str | None = None) -> dict:
    """Compare ``config.data`` with the model's reference; return drift.json's content.

    With ``dask_address`` the batch is validated and scored in partitions on that cluster
    (:func:`clusterflow.partitioned.monitor_partitioned`); the result is the same.
    The returned dict also holds ``out_dir`` and ``event_emitted``.
    """
    out_dir = config.out_dir or str(Path("clusterflow-runs") / f"monitor-{run_id_now()}")
    model, run_id = load_model_task(config.model_uri, config.workspace)
    if dask_address:  # validated and scored partitioned on the cluster's workers
        outcome = drift_partitioned_task(model, config, dask_address)
    else:
        # the id as text: the quarantined rows of a Parquet or JSON Lines batch show it as written
        outcome = drift_task(model, read_batch_task(config.data, model.roles.id_column), config)
    data = report_task(outcome, config, out_dir, config.model_uri, run_id)
    return {
        **data,
        "event_emitted": emit_drift_task(data, config, config.model_uri, run_id),
        "out_dir": out_dir,
    }
