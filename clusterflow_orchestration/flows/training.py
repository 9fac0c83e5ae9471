"""The training flow: ingest -> validate -> impute | embed -> sweep -> register -> outputs.

Validation runs on the raw rows (bad rows are quarantined before they can bias the imputer); the
imputed table is then checked again against the strict schema (no gaps, finite numbers, known
categories) inside the impute stage. Imputation and embedding are independent and run concurrently.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, runtime

from clusterflow.config import TrainConfig
from clusterflow.progress import report
from clusterflow.schema import ColumnRoles
from clusterflow_orchestration.tasks.embed import embed_task
from clusterflow_orchestration.tasks.impute import impute_task
from clusterflow_orchestration.tasks.ingest import ingest_task
from clusterflow_orchestration.tasks.outputs import outputs_task
from clusterflow_orchestration.tasks.register import register_task
from clusterflow_orchestration.tasks.settings import recorded_settings_task
from clusterflow_orchestration.tasks.sweep import sweep_task
from clusterflow_orchestration.tasks.validate import validate_task


def run_id_now() -> str:
    """Return a sortable run id: UTC time plus the start of the Prefect flow run id."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    flow_run_id = runtime.flow_run.id
    return f"{stamp}-{str(flow_run_id)[:8]}" if flow_run_id else stamp


def imputer_threads(roles: ColumnRoles) -> int | None:
    """Return the imputer's thread budget in the training flow, which embeds while it imputes.

    Every core (-1) when nothing is embedded; one thread (None) beside the embedder, whose own
    threads take the cores: the imputer's threads next to them made the birds training
    slower (cold 178 s against 131 s serial; README, benchmarks).
    """
    return None if roles.text_column else -1


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
    if config.settings_from:  # a drift retrain: the drifted model's columns and settings
        config = recorded_settings_task(config)
    run_id = run_id_now()
    out_dir = config.out_dir or str(Path("clusterflow-runs") / run_id)
    stages: dict[str, dict] = {}
    clock = time.perf_counter()
    snapshot = ingest_task(config.data, config.workspace, config.id_column)
    clock = _stage(stages, "read", clock, snapshot.n_rows, snapshot.n_rows, snapshot.reused)
    validated = validate_task(snapshot, config)
    clock = _stage(stages, "validate", clock, snapshot.n_rows, validated.n_valid, validated.reused)
    finished: dict[str, float] = {}
    threads = imputer_threads(validated.column_roles)
    imputed_future = impute_task.submit(validated, config, threads)
    imputed_future.add_done_callback(lambda _f: finished.setdefault("impute", time.perf_counter()))
    embedded_future = embed_task.submit(validated, config)
    embedded_future.add_done_callback(lambda _f: finished.setdefault("embed", time.perf_counter()))
    imputed, embedded = imputed_future.result(), embedded_future.result()
    now = time.perf_counter()
    _stage(
        stages,
        "impute",
        clock,
        validated.n_valid,
        validated.n_valid,
        imputed.reused,
        end=finished.get("impute", now),
    )
    if embedded is not None:
        _stage(
            stages,
            "embed",
            clock,
            validated.n_valid,
            embedded.n_texts,
            embedded.reused,
            end=finished.get("embed", now),
        )
    clock = now
    swept = sweep_task(validated, imputed, embedded, config)
    clock = _stage(stages, "sweep", clock, validated.n_valid, validated.n_valid, swept.reused)
    registration = None
    if register_model:
        report("register", 0, 1, "steps")
        registration = register_task(config, snapshot, validated, imputed, embedded, swept)
        report("register", 1, 1, "steps")
        clock = _stage(stages, "register", clock, validated.n_valid, validated.n_valid, False)
    return outputs_task(
        out_dir, run_id, snapshot, validated, imputed, embedded, swept, registration, stages
    )


def _stage(
    stages: dict,
    name: str,
    started: float,
    rows_in: int,
    rows_out: int,
    reused: bool,
    *,
    end: float | None = None,
) -> float:
    """Record a stage's wall time and rows (for summary.json and the bars); return the end time."""
    end = time.perf_counter() if end is None else end
    stages[name] = {
        "seconds": round(end - started, 3),
        "rows_in": int(rows_in),
        "rows_out": int(rows_out),
        "reused": bool(reused),
    }
    if name in ("read", "validate", "impute"):
        report(name, rows_out, rows_out, "rows")
    return end
