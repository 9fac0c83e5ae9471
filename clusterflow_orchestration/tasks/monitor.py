"""Monitoring tasks: compare a batch with the champion's reference, report, emit the event."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from clusterflow.config import MonitorConfig
from clusterflow.drift import DriftThresholds
from clusterflow.drift_report import render_html, render_markdown
from clusterflow.io import file_format, write_csv, write_json
from clusterflow.model_registry import redact
from clusterflow.monitoring import MonitorOutcome, monitor_frame
from clusterflow.outputs import rows_as_written

DRIFT_EVENT = "clusterflow.drift.detected"
"""Name of the Prefect event emitted on drift (deployments/ triggers retraining on it)."""


def thresholds_from(config: MonitorConfig) -> DriftThresholds:
    """Return the thresholds a monitoring config asks for (the rest keep their defaults)."""
    return DriftThresholds(**config.drift.model_dump())


def _warn_quarantined(outcome: MonitorOutcome) -> MonitorOutcome:
    """Log how many batch rows were quarantined (not compared); return the outcome."""
    if len(outcome.quarantine):
        get_run_logger().warning(
            "%d of %d batch rows failed the champion's schema: quarantined, not compared",
            len(outcome.quarantine),
            outcome.rows_in,
        )
    return outcome


@task(name="drift")
def drift_task(model, frame: pd.DataFrame, config: MonitorConfig) -> MonitorOutcome:
    """Validate, impute, embed and score the batch like the champion; compare with its reference."""
    embedder = (
        model.embedder.build(Path(config.workspace) / "embeddings.sqlite")
        if model.embedder
        else None
    )
    outcome = monitor_frame(
        model,
        frame,
        thresholds_from(config),
        random_state=config.random_state,
        embedder=embedder,
        source=Path(config.data).name,
    )
    return _warn_quarantined(outcome)


@task(name="drift-partitioned")
def drift_partitioned_task(model, config: MonitorConfig, dask_address: str) -> MonitorOutcome:
    """As ``drift_task``, with the batch validated and scored in partitions on a Dask cluster."""
    from clusterflow.distributed import dask_client
    from clusterflow.partitioned import monitor_partitioned

    with dask_client(dask_address) as client:
        outcome = monitor_partitioned(
            model,
            config.data,
            client=client,
            workspace=config.workspace,
            thresholds=thresholds_from(config),
            random_state=config.random_state,
        )
    return _warn_quarantined(outcome)


def drift_metrics(data: dict) -> dict[str, float]:
    """Pick the numbers of drift.json worth a time series in MLflow (named ``drift.*``)."""
    novelty = data.get("novelty", {})
    candidates = {
        "drift.detected": float(data["drift_detected"]),
        "drift.columns": float(len(data.get("drifted_columns", []))),
        "drift.text_auc": data.get("embedding", {}).get("auc"),
        "drift.cluster_psi": data.get("clusters", {}).get("psi"),
        "drift.novel_share": novelty.get("batch_novel_share"),
        "drift.noise_share": novelty.get("batch_noise_share"),
        "drift.mean_distance": novelty.get("batch_mean_distance"),
        "drift.quarantined_share": data.get("rows", {}).get("quarantined_share"),
    }
    return {k: float(v) for k, v in candidates.items() if v is not None}


def log_drift_to_run(run_id: str, data: dict, name: str) -> int:
    """Log the drift metrics and drift.json to the champion's (finished) MLflow run.

    The client API writes into a run without reopening it, so the run's status and end time
    stay as training left them. Each monitoring pass logs at the next step, so the metrics
    form a time series over batches. Returns that step.
    """
    client = MlflowClient()
    step = len(client.get_metric_history(run_id, "drift.detected"))
    now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    metrics = [Metric(k, v, now, step) for k, v in drift_metrics(data).items()]
    client.log_batch(run_id, metrics=metrics)
    client.log_dict(run_id, data, f"drift/{step:04d}-{name}.json")
    return step


def _as_written(quarantine: pd.DataFrame, data: str) -> pd.DataFrame:
    """Return the quarantined rows as the file has them (``32`` stays ``32``), plus ``reason``.

    The rows are indexed by their row number in the input, in both the in-process and the
    partitioned path.
    """
    if quarantine.empty or not Path(data).is_file() or file_format(Path(data)) != "csv":
        return quarantine  # Parquet and JSON Lines values are already as the file has them
    return rows_as_written(
        data, quarantine.index.astype(int).tolist(), quarantine["reason"].tolist()
    )


@task(name="drift-report")
def report_task(
    outcome: MonitorOutcome,
    config: MonitorConfig,
    out_dir: str,
    model_uri: str,
    run_id: str | None,
) -> dict:
    """Write drift.json, drift_report.html, quarantine.csv; publish the artifact; log to MLflow."""
    result, rows = outcome.result, outcome.rows()
    data = {**outcome.to_dict(), "model_uri": model_uri, "data": config.data}
    out = Path(out_dir)
    write_json(data, out / "drift.json")
    html = render_html(
        result,
        reference_name=f"{model_uri} (training sample)",
        batch_name=Path(config.data).name,
        rows=rows,
    )
    (out / "drift_report.html").write_text(html)
    write_csv(_as_written(outcome.quarantine, config.data), out / "quarantine.csv")
    create_markdown_artifact(
        render_markdown(result, rows=rows), key="drift", description="Drift report"
    )
    data["mlflow_step"] = None
    if run_id:
        try:
            data["mlflow_step"] = log_drift_to_run(run_id, data, Path(config.data).stem)
        except (MlflowException, OSError) as err:
            # The report on disk is the deliverable; a registry hiccup must not lose it.
            get_run_logger().warning("could not log drift to MLflow: %s", redact(str(err)))
    return data


@task(name="emit-drift-event")
def emit_drift_task(
    data: dict, config: MonitorConfig, model_uri: str, run_id: str | None = None
) -> bool:
    """Emit ``clusterflow.drift.detected`` (an automation retrains on it) when drift was found.

    ``settings_from`` in the payload names the model that drifted by its run (``runs:/<id>/
    model``), not by the alias, which may have moved by the time the retrain starts.
    """
    if not (data["drift_detected"] and config.emit_event):
        return False
    event = emit_event(
        event=DRIFT_EVENT,
        resource={
            "prefect.resource.id": f"clusterflow.model.{model_uri}",
            "prefect.resource.name": model_uri,
        },
        payload={
            "data": str(Path(config.data).resolve()),
            "model_uri": model_uri,
            "settings_from": f"runs:/{run_id}/model" if run_id else model_uri,
            "drifted_columns": data.get("drifted_columns", []),
            "reasons": data.get("reasons", [])[:10],
            "text_auc": data.get("embedding", {}).get("auc"),
            "cluster_psi": data.get("clusters", {}).get("psi"),
        },
    )
    get_run_logger().warning("drift detected; emitted %s", DRIFT_EVENT)
    return event is not None
