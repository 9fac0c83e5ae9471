"""Scoring and monitoring tasks: load the champion, score a batch, compare, report, emit."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from clusterflow.config import MonitorConfig, ScoreConfig
from clusterflow.drift import DriftThresholds
from clusterflow.drift_report import render_html, render_markdown
from clusterflow.io import read_table, write_csv, write_json
from clusterflow.monitoring import assignment_ids, monitor_frame, score_frame
from clusterflow.registry import load_cluster_model, redact, resolve_tracking_uri
from tasks.common import retry_transient

DRIFT_EVENT = "clusterflow.drift.detected"


@task(name="load-model", retries=2, retry_delay_seconds=[2, 5], retry_condition_fn=retry_transient)
def load_model_task(model_uri: str, workspace: str):
    """Load a model from the configured registry (retried on I/O errors only)."""
    mlflow.set_tracking_uri(resolve_tracking_uri(workspace))
    return load_cluster_model(model_uri)


@task(name="read-batch", retries=3, retry_delay_seconds=[1, 2, 5], retry_condition_fn=retry_transient)
def read_batch_task(data: str) -> pd.DataFrame:
    """Read a batch to score or monitor."""
    return read_table(data)


@task(name="score")
def score_task(model, frame: pd.DataFrame, config: ScoreConfig) -> dict:
    """Assign every row and write ``<id>,cluster`` (plus distance/novel with details)."""
    embedder = model.embedder.build(Path(config.workspace) / "embeddings.sqlite") if model.embedder else None
    _, assigned = score_frame(model, frame, embedder=embedder)
    id_name, ids = assignment_ids(model, frame, config.id_column)
    out = pd.DataFrame({id_name: ids, "cluster": assigned["cluster"].to_numpy()})
    if config.details:
        out["distance"] = assigned["distance"].to_numpy()
        out["novel"] = assigned["novel"].to_numpy()
    write_csv(out, config.out)
    sizes = out["cluster"].value_counts().sort_index()
    get_run_logger().info("scored %d rows into %s", len(out), config.out)
    return {"rows": len(out), "out": config.out, "novel": int(assigned["novel"].sum()),
            "cluster_sizes": {str(k): int(v) for k, v in sizes.items()}}


@task(name="drift")
def drift_task(model, frame: pd.DataFrame, config: MonitorConfig) -> dict:
    """Compare the batch with the model's reference; return drift.json's content."""
    embedder = model.embedder.build(Path(config.workspace) / "embeddings.sqlite") if model.embedder else None
    result = monitor_frame(model, frame, DriftThresholds(**config.drift.model_dump()),
                           random_state=config.random_state, embedder=embedder)
    return {"result": result, "dict": result.to_dict()}


@task(name="drift-report")
def report_task(outcome: dict, config: MonitorConfig, out_dir: str, model_uri: str, run_id: str | None) -> dict:
    """Write drift.json and drift_report.html, publish the markdown artifact, log to MLflow."""
    result, data = outcome["result"], outcome["dict"]
    data = {**data, "model_uri": model_uri, "data": config.data}
    out = Path(out_dir)
    write_json(data, out / "drift.json")
    html = render_html(result, reference_name=f"{model_uri} (training sample)",
                       batch_name=Path(config.data).name)
    (out / "drift_report.html").write_text(html)
    create_markdown_artifact(render_markdown(result), key="drift", description="Drift report")
    if run_id:
        try:
            with mlflow.start_run(run_id=run_id):
                metrics = {"drift.detected": float(result.drift_detected),
                           "drift.columns": float(len(result.drifted_columns))}
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
        resource={"prefect.resource.id": f"clusterflow.model.{model_uri}",
                  "prefect.resource.name": model_uri},
        payload={"data": str(Path(config.data).resolve()), "model_uri": model_uri,
                 "drifted_columns": data.get("drifted_columns", []),
                 "reasons": data.get("reasons", [])[:10],
                 "text_auc": data.get("embedding", {}).get("auc"),
                 "cluster_psi": data.get("clusters", {}).get("psi")},
    )
    get_run_logger().warning("drift detected; emitted %s", DRIFT_EVENT)
    return True
