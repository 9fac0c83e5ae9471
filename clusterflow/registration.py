"""Log a training run to MLflow, register its model, and move the aliases through the gate.

The order makes a crash harmless: everything about the run is logged first, the model version is
registered (tagged ``clusterflow.state=pending``), the champion is re-read and the gate re-run if
another training moved it meanwhile, the version is tagged ``complete``, and the alias moves
last. If anything fails after the version was registered, the version is deleted and the run is
marked FAILED, so ``champion`` never points at a half-logged version. A process killed in
between leaves at most a ``pending`` version without alias (never loaded by alias, safe to
delete).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from clusterflow import gate
from clusterflow.config import TrainConfig
from clusterflow.model import ClusterModel, stage_with_cluster_map
from clusterflow.pipeline import Embedded, Imputed, Snapshot, Swept, Validated
from clusterflow.registry import (
    CHALLENGER,
    CHAMPION,
    champion_version,
    connect,
    create_run,
    delete_version,
    ensure_experiment,
    flat_params,
    load_champion,
    load_version,
    log_model_version,
    redact,
    set_alias,
    set_version_tag,
)

logger = logging.getLogger(__name__)

RECHECKS = 3
"""How often the champion is re-read (and the gate re-run) before the alias moves."""

STATE_TAG = "clusterflow.state"


@dataclass(frozen=True)
class Registration:
    """Where the model went and whether it became the champion.

    ``cluster_map`` maps the sweep's raw cluster ids (those in the sweep's ``labels.npy``) to the
    published ids of the registered model (aligned with the previous champion); the run's
    ``assignments.csv`` must apply it (:func:`apply_cluster_map`).
    """

    run_id: str
    model_uri: str
    model_version: str
    promoted: bool
    reason: str
    challenger_score: float | None
    champion_score: float | None
    previous_champion: str | None
    tracking_uri: str
    cluster_map: dict[str, int] = field(default_factory=dict)
    matched_share: float | None = None
    gate_metric: str = gate.GATE_METRIC


def apply_cluster_map(labels: np.ndarray, cluster_map: dict) -> np.ndarray:
    """Renumber raw sweep labels with a registration's ``cluster_map`` (-1 stays -1)."""
    mapping = {int(k): int(v) for k, v in (cluster_map or {}).items()}
    labels = np.asarray(labels, dtype=int)
    return np.array([mapping.get(int(c), int(c)) if c >= 0 else -1 for c in labels], dtype=int)


def _input_example(validated: Validated, n: int = 5) -> pd.DataFrame:
    roles = validated.column_roles
    columns = list(roles.features) + ([roles.text_column] if roles.text_column else [])
    return pd.read_parquet(validated.valid_path, columns=columns).head(n)


def _log_run_record(
    config: TrainConfig,
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    swept: Swept,
    valid: pd.DataFrame,
) -> None:
    """Params, metrics, the training dataset and the artifacts of the active run."""
    roles = validated.column_roles
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


def _recheck(
    name: str,
    decision: gate.GateDecision,
    model: ClusterModel,
    sample: pd.DataFrame,
    embeddings: np.ndarray | None,
    tolerance: float,
) -> gate.GateDecision:
    """Re-run the gate if another training moved ``champion`` since ``decision`` was taken.

    The cluster map of the first decision is kept (it is already inside the logged model).
    """
    for _ in range(RECHECKS):
        current = champion_version(name)
        current_version = str(current.version) if current is not None else None
        if current_version == decision.champion_version:
            return decision
        logger.info(
            "champion of %s moved from %s to %s during this run; gating again",
            name,
            decision.champion_version,
            current_version,
        )
        champion = load_version(name, current_version) if current_version else None
        again = gate.decide(
            model,
            champion,
            sample,
            tolerance=tolerance,
            challenger_embeddings=embeddings,
            champion_version=current_version,
        )
        decision = gate.GateDecision(
            again.promote,
            f"{again.reason} (re-checked: the champion moved during this run)",
            again.challenger_score,
            again.champion_score,
            current_version,
            decision.cluster_map,
            decision.matched_share,
        )
    return decision


def register_training(
    *,
    config: TrainConfig,
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    swept: Swept,
    tags: dict | None = None,
    run_name: str | None = None,
    start_time: datetime | None = None,
) -> Registration:
    """Log the run, register the model, gate it against the champion and move one alias.

    Parameters
    ----------
    config : TrainConfig
        The training configuration (registry name, tolerance, evaluation sample size, seed).
    snapshot, validated, imputed, embedded, swept : stage handles
        The outputs of the training stages (:mod:`clusterflow.pipeline`).
    tags : dict, optional
        Run tags (the Prefect flow run id and URL).
    run_name, start_time : optional
        Name and start of the MLflow run: the Prefect flow run's, so the run spans the flow.

    Returns
    -------
    Registration
        Version, URI, gate outcome and the cluster map applied to the sweep's labels.

    Raises
    ------
    RegistryError
        If the model cannot be logged or registered; the run is then marked FAILED and a version
        registered by this call is deleted again.
    """
    uri = connect(config.workspace)
    experiment_id = ensure_experiment(config.registry.experiment, config.workspace)
    name = config.registry.model_name
    model = ClusterModel.load(swept.model_dir)

    valid = pd.read_parquet(validated.valid_path)
    embeddings = np.load(embedded.path) if embedded else None
    sample = gate.evaluation_sample(valid, config.registry.eval_sample, config.random_state)
    positions = valid.index.get_indexer(sample.index)
    sample_embeddings = embeddings[positions] if embeddings is not None else None

    run_id = create_run(experiment_id, run_name=run_name, start_time=start_time, tags=tags)
    with mlflow.start_run(run_id=run_id) as run:
        version: str | None = None
        try:
            _log_run_record(config, snapshot, validated, imputed, swept, valid)
            champion, previous = load_champion(name)
            decision = gate.decide(
                model,
                champion,
                sample,
                tolerance=config.registry.tolerance,
                challenger_embeddings=sample_embeddings,
                champion_version=previous,
            )
            mlflow.log_dict(
                {str(k): v for k, v in decision.cluster_map.items()}, "cluster_map.json"
            )
            with tempfile.TemporaryDirectory(prefix="clusterflow-model-") as tmp:
                staged = stage_with_cluster_map(
                    swept.model_dir, Path(tmp) / "model", decision.cluster_map
                )
                model_uri, version = log_model_version(
                    model_dir=staged,
                    name=name,
                    input_example=_input_example(validated),
                    tags={"fingerprint": snapshot.fingerprint[:16]},
                )
            set_version_tag(name, version, STATE_TAG, "pending")

            decision = _recheck(
                name, decision, model, sample, sample_embeddings, config.registry.tolerance
            )
            promote = decision.promote and config.registry.promote
            reason = decision.reason if config.registry.promote else "promotion disabled in config"
            mlflow.log_metrics(
                {
                    k: v
                    for k, v in (
                        ("gate.challenger", decision.challenger_score),
                        ("gate.champion", decision.champion_score),
                        ("gate.matched_share", decision.matched_share),
                    )
                    if v is not None
                }
            )
            mlflow.log_dict(
                {**decision.to_dict(), "promoted": promote, "version": version}, "gate.json"
            )
            mlflow.set_tags(
                {
                    "clusterflow.promoted": str(promote),
                    "clusterflow.gate": reason[:500],
                    "clusterflow.model_version": version,
                }
            )
            set_version_tag(name, version, STATE_TAG, "complete")
            # Last step: a failure before this line leaves the aliases where they were.
            set_alias(name, CHAMPION if promote else CHALLENGER, version)
        except BaseException:
            if version is not None:
                logger.error("registration of %s failed; deleting version %s", name, version)
                delete_version(name, version)
            raise
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
        challenger_score=decision.challenger_score,
        champion_score=decision.champion_score,
        previous_champion=previous,
        tracking_uri=redact(uri),
        cluster_map={str(k): int(v) for k, v in decision.cluster_map.items()},
        matched_share=decision.matched_share,
    )


def registration_dict(reg: Registration) -> dict:
    """Return a JSON-safe view."""
    return asdict(reg)
