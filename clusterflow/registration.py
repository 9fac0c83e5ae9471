"""Log a training run to MLflow, register its model, and move the aliases through the gate."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from clusterflow import gate
from clusterflow.config import TrainConfig
from clusterflow.model import ClusterModel
from clusterflow.pipeline import Embedded, Imputed, Snapshot, Swept, Validated
from clusterflow.registry import (
    CHALLENGER,
    CHAMPION,
    ensure_experiment,
    flat_params,
    load_champion,
    log_model_version,
    redact,
    resolve_tracking_uri,
    set_alias,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """Where the model went and whether it became the champion."""

    run_id: str
    model_uri: str
    model_version: str
    promoted: bool
    reason: str
    challenger_score: float | None
    champion_score: float | None
    previous_champion: str | None
    tracking_uri: str


def _input_example(validated: Validated, n: int = 5) -> pd.DataFrame:
    roles = validated.column_roles
    columns = list(roles.features) + ([roles.text_column] if roles.text_column else [])
    return pd.read_parquet(validated.valid_path, columns=columns).head(n)


def register_training(
    *,
    config: TrainConfig,
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    swept: Swept,
    tags: dict | None = None,
) -> Registration:
    """Log params, metrics, artifacts and the model; gate it against the champion; set aliases."""
    uri = resolve_tracking_uri(config.workspace)
    mlflow.set_tracking_uri(uri)
    experiment_id = ensure_experiment(config.registry.experiment, config.workspace)
    name = config.registry.model_name
    model = ClusterModel.load(swept.model_dir)
    roles = validated.column_roles

    valid = pd.read_parquet(validated.valid_path)
    embeddings = np.load(embedded.path) if embedded else None
    sample = gate.evaluation_sample(valid, config.registry.eval_sample, config.random_state)
    positions = valid.index.get_indexer(sample.index)
    sample_embeddings = embeddings[positions] if embeddings is not None else None

    with mlflow.start_run(experiment_id=experiment_id, tags=tags or {}) as run:
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
        dataset = mlflow.data.from_pandas(
            valid[list(roles.features) + ([roles.text_column] if roles.text_column else [])],
            source=str(Path(snapshot.source).resolve()),
            name=Path(snapshot.source).name,
            digest=snapshot.fingerprint[:32],
        )
        mlflow.log_input(dataset, context="training")
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

        champion, previous = load_champion(name)
        decision = gate.decide(
            model,
            champion,
            sample,
            tolerance=config.registry.tolerance,
            challenger_embeddings=sample_embeddings,
        )
        mlflow.log_metrics(
            {
                k: v
                for k, v in (
                    ("gate.challenger", decision["challenger_score"]),
                    ("gate.champion", decision["champion_score"]),
                )
                if v is not None
            }
        )
        mlflow.log_dict(
            {**decision, "metric": gate.GATE_METRIC, "previous_champion": previous}, "gate.json"
        )
        model_uri, version = log_model_version(
            model_dir=swept.model_dir,
            name=name,
            input_example=_input_example(validated),
            tags={"fingerprint": snapshot.fingerprint[:16]},
        )
        promote = bool(decision["promote"]) and config.registry.promote
        reason = decision["reason"] if config.registry.promote else "promotion disabled in config"
        set_alias(name, CHAMPION if promote else CHALLENGER, version)
        mlflow.set_tags({"clusterflow.promoted": str(promote), "clusterflow.gate": reason[:500]})
        logger.info(
            "registered %s version %s; %s",
            name,
            version,
            "promoted to champion" if promote else f"not promoted: {reason}",
        )
        return Registration(
            run_id=run.info.run_id,
            model_uri=model_uri,
            model_version=version,
            promoted=promote,
            reason=reason,
            challenger_score=decision["challenger_score"],
            champion_score=decision["champion_score"],
            previous_champion=previous,
            tracking_uri=redact(uri),
        )


def registration_dict(reg: Registration) -> dict:
    """JSON-safe view."""
    return asdict(reg)
