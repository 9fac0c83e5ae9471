"""Monitoring tasks: compare a batch with the champion's reference, report, emit the event."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from clusterflow.config import MonitorConfig
from clusterflow.drift import DriftThresholds
from clusterflow.drift_report import render_html, render_markdown
from clusterflow.io import write_json
from clusterflow.monitoring import monitor_frame
from clusterflow.registry import redact

DRIFT_EVENT = "clusterflow.drift.detected"


@task(name="drift")
def drift_task(model, frame: pd.DataFrame, config: MonitorConfig) -> dict:
    """Compare the batch with the model's reference; return drift.json's content."""
    embedder = (
        model.embedder.build(Path(config.workspace) / "embeddings.sqlite")
        if model.embedder
        else None
    )
    result = monitor_frame(
        model,
        frame,
        DriftThresholds(**config.drift.model_dump()),
        random_state=config.random_state,
        embedder=embedder,
    )
    return {"result": result, "dict": result.to_dict()}


@task(name="drift-report")
def report_task(
    outcome: dict, config: MonitorConfig, out_dir: str, model_uri: str, run_id: str | None
) -> dict:
    """Write drift.json and drift_report.html, publish the markdown artifact, log to MLflow."""
    result, data = outcome["result"], outcome["dict"]
    data = {**data, "model_uri": model_uri, "data": config.data}
    out = Path(out_dir)
    write_json(data, out / "drift.json")
    html = render_html(
        result, reference_name=f"{model_uri} (training sample)", batch_name=Path(config.data).name
    )
    (out / "drift_report.html").write_text(html)
    create_markdown_artifact(render_markdown(result), key="drift", description="Drift report")
    if run_id:
        try:
            with mlflow.start_run(run_id=run_id):
                metrics = {
                    "drift.detected": float(result.drift_detected),
                    "drift.columns": float(len(result.drifted_columns)),
                }
                if result.embedding.get("auc") is not None:
                    metrics["drift.text_auc"] = float(result.embedding["auc"])
                if result.clusters.get("psi") is not None:
                    metrics["drift.cluster_psi"] = float(result.clusters["psi"])
                mlflow.log_metrics(metrics)
                mlflow.log_dict(data, f"drift/{Path(config.data).stem}.json")
        except mlflow.exceptions.MlflowException as err:
            get_run_logger().warning("could not log drift to MLflow: %s", redact(str(err)))
    return data


@task(name="emit-drift-event")
def emit_drift_task(data: dict, config: MonitorConfig, model_uri: str) -> bool:
    """Emit ``clusterflow.drift.detected`` (an automation retrains on it) when drift was found."""
    if not (data["drift_detected"] and config.emit_event):
        return False
    emit_event(
        event=DRIFT_EVENT,
        resource={
            "prefect.resource.id": f"clusterflow.model.{model_uri}",
            "prefect.resource.name": model_uri,
        },
        payload={
            "data": str(Path(config.data).resolve()),
            "model_uri": model_uri,
            "drifted_columns": data.get("drifted_columns", []),
            "reasons": data.get("reasons", [])[:10],
            "text_auc": data.get("embedding", {}).get("auc"),
            "cluster_psi": data.get("clusters", {}).get("psi"),
        },
    )
    get_run_logger().warning("drift detected; emitted %s", DRIFT_EVENT)
    return True
