"""Monitoring: drift of a new batch against the champion's reference; emits the retrain event."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from clusterflow.config import MonitorConfig
from flows.training import run_id_now
from tasks.monitor import drift_task, emit_drift_task, report_task
from tasks.score import load_model_task, read_batch_task


@flow(name="clusterflow-monitor", log_prints=True)
def monitoring_flow(config: MonitorConfig) -> dict:
    """Compare ``config.data`` with the model's reference; write drift.json and the HTML report."""
    out_dir = config.out_dir or str(Path("clusterflow-runs") / f"monitor-{run_id_now()}")
    model, run_id = load_model_task(config.model_uri, config.workspace)
    frame = read_batch_task(config.data)
    outcome = drift_task(model, frame, config)
    data = report_task(outcome, config, out_dir, config.model_uri, run_id)
    data["event_emitted"] = emit_drift_task(data, config, config.model_uri)
    data["out_dir"] = out_dir
    return data
