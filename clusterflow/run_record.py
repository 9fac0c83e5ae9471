"""What a training run records in MLflow: params, metrics, the data set, artifacts, gate evidence.

Each function logs into the active MLflow run; :func:`clusterflow.registration.register_training`
calls them in its **log** and **alias** steps.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from clusterflow import gate
from clusterflow.config import TrainConfig
from clusterflow.model import input_columns
from clusterflow.model_registry import flat_params
from clusterflow.stages import Imputed, Snapshot, Swept, Validated

__all__ = ["log_artifacts", "log_gate", "log_params_and_metrics", "log_training_data"]


def log_params_and_metrics(
    config: TrainConfig, snapshot: Snapshot, validated: Validated, imputed: Imputed, swept: Swept
) -> None:
    """Log the flattened config, the data fingerprint, the choices and the row counts."""
    mlflow.log_params(flat_params(config.model_dump(mode="json")))
    mlflow.log_params(
        {
            "data.fingerprint": snapshot.fingerprint,
            "chosen.algorithm": swept.algorithm,
            "chosen.k": swept.k,
            "imputer.chosen": imputed.method,
        }
    )
    metrics = {f"chosen.{k}": v for k, v in swept.metrics.items() if v is not None}
    metrics.update(
        {
            "rows_in": snapshot.n_rows,
            "rows_valid": validated.n_valid,
            "rows_quarantined": validated.n_quarantined,
            "k": swept.k,
        }
    )
    mlflow.log_metrics(metrics)


def log_training_data(snapshot: Snapshot, validated: Validated, valid: pd.DataFrame) -> None:
    """Log the model's input columns of the valid rows as the run's ``training`` data set."""
    dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]  # lazily exported
        valid[input_columns(validated.column_roles)],
        source=str(Path(snapshot.source).resolve()),
        name=Path(snapshot.source).name,
        digest=snapshot.fingerprint[:32],
    )
    mlflow.log_input(dataset, context="training")


def log_artifacts(
    config: TrainConfig, validated: Validated, imputed: Imputed, swept: Swept
) -> None:
    """Log the sweep table, the plots and cards that exist, the config and the data report."""
    mlflow.log_artifact(swept.results_path, artifact_path="sweep")
    for plot in swept.plots.values():
        if Path(plot).exists():
            mlflow.log_artifact(plot, artifact_path="plots")
    if imputed.plot_path and Path(imputed.plot_path).exists():
        mlflow.log_artifact(imputed.plot_path, artifact_path="plots")
    if swept.cards_path and Path(swept.cards_path).exists():
        mlflow.log_artifact(swept.cards_path, artifact_path="cards")
    mlflow.log_dict(config.model_dump(mode="json"), "config.json")
    mlflow.log_dict(
        {
            "roles": validated.roles,
            "imputer_scores": imputed.scores,
            "missingness": imputed.profile,
        },
        "data_report.json",
    )


def log_gate(decision: gate.GateDecision, promote: bool, reason: str, version: str) -> dict:
    """Record the gate's evidence in the run: metrics, tags and ``gate.json``; return the record."""
    record = {**decision.to_dict(), "promoted": promote, "reason": reason, "version": version}
    interval = decision.interval or (None, None)
    mlflow.log_metrics(
        {
            k: v
            for k, v in (
                ("gate.challenger", decision.challenger_score),
                ("gate.champion", decision.champion_score),
                ("gate.interval_low", interval[0]),
                ("gate.interval_high", interval[1]),
                ("gate.agreement_ari", decision.agreement),
                ("gate.rows", decision.rows),
                ("gate.matched_share", decision.matched_share),
            )
            if v is not None
        }
    )
    mlflow.log_dict(record, "gate.json")
    mlflow.set_tags(
        {
            "clusterflow.promoted": str(promote),
            "clusterflow.gate": reason[:500],
            "clusterflow.gate_outcome": str(decision.outcome),
            "clusterflow.model_version": version,
        }
    )
    return record
