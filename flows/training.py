"""The training flow: ingest -> validate -> impute | embed -> sweep -> register -> outputs.

Validation runs on the raw rows (bad rows are quarantined before they can bias the imputer); the
imputed table is then checked again against the strict schema (no gaps, finite numbers, known
categories) inside the impute stage. Imputation and embedding are independent and run concurrently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, runtime

from clusterflow.config import TrainConfig
from tasks.embed import embed_task
from tasks.impute import impute_task
from tasks.ingest import ingest_task
from tasks.outputs import outputs_task
from tasks.register import register_task
from tasks.sweep import sweep_task
from tasks.validate import validate_task


def run_id_now() -> str:
    """Return a sortable run id: UTC time plus the start of the Prefect flow run id."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    flow_run_id = runtime.flow_run.id
    return f"{stamp}-{str(flow_run_id)[:8]}" if flow_run_id else stamp


@flow(name="clusterflow-train", log_prints=True)
def training_flow(config: TrainConfig, register_model: bool = True) -> dict:
    """Train on one data file and register the model; return the run summary.

    Parameters
    ----------
    config : TrainConfig
        The data file, its columns' roles and every stage's settings.
    register_model : bool
        Log the run to MLflow and register the model (the challenger gate decides the alias).
    """
    run_id = run_id_now()
    out_dir = config.out_dir or str(Path("clusterflow-runs") / run_id)
    snapshot = ingest_task(config.data, config.workspace)
    validated = validate_task(snapshot, config)
    imputed_future = impute_task.submit(validated, config)
    embedded_future = embed_task.submit(validated, config)
    imputed, embedded = imputed_future.result(), embedded_future.result()
    swept = sweep_task(validated, imputed, embedded, config)
    registration = (
        register_task(config, snapshot, validated, imputed, embedded, swept)
        if register_model
        else None
    )
    return outputs_task(
        out_dir, run_id, snapshot, validated, imputed, embedded, swept, registration
    )
