"""Register a training run: log -> gate -> register pending -> re-gate and move the alias.

:func:`register_training` is the whole sequence, top to bottom, each step a function below it in
the order it runs. Below the steps: the MLflow calls in :mod:`clusterflow.model_registry`, what the
run records in :mod:`clusterflow.run_record`, the challenger and its gates against the champion in
:mod:`clusterflow.challenger` (the gate itself in :mod:`clusterflow.gate`).

1. **log** the run's record (params, metrics, data set, sweep table, plots, cards);
2. **gate** the challenger against the champion as it is now, on the rows the sweep held out
   (the cluster-id map it yields goes into the model, so this comes before registration);
3. **register** the model as a version tagged ``clusterflow.state=pending`` (and its owner
   process), in one registry call; ``pending`` versions that earlier killed runs left behind are
   deleted first;
4. under a lock on the store, **re-gate** if another training moved the champion meanwhile and
   **move the alias** (``champion`` or ``challenger``): the commit point. The version is tagged
   ``complete`` after it.

If anything fails after the version was registered, the version is deleted and the run is marked
FAILED, so ``champion`` never points at a half-logged version. A process killed between 3 and 4
leaves a ``pending`` version without alias: the next registration of the model deletes it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from clusterflow import gate, run_record
from clusterflow.challenger import (
    RECHECKS,  # noqa: F401  (re-exported from its old home)
    Challenger,
    gate_against_champion,
    load_challenger,
    regate_if_moved,
)
from clusterflow.cluster_ids import renumber, stage_with_cluster_map
from clusterflow.config import TrainConfig
from clusterflow.model import input_columns
from clusterflow.model_registry import (
    CHALLENGER,
    CHAMPION,
    OWNER_TAG,
    STATE_TAG,
    clean_orphans,
    clear_alias,
    connect,
    create_run,
    delete_version,
    ensure_experiment,
    log_model_version,
    owner,
    redact,
    registry_lock,
    set_alias,
    set_version_tag,
)
from clusterflow.stages import Embedded, Imputed, Snapshot, Swept, Validated

logger = logging.getLogger(__name__)


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
    gate_metric: str = ""
    gate: dict = field(default_factory=dict)
    orphans_removed: list[str] = field(default_factory=list)


def apply_cluster_map(labels: np.ndarray, cluster_map: dict) -> np.ndarray:
    """Renumber raw sweep labels with a registration's ``cluster_map`` (-1 stays -1)."""
    return renumber(labels, cluster_map)


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
    """Log the run, gate the model against the champion, register it and move one alias.

    Parameters
    ----------
    config : TrainConfig
        The training configuration (registry name, gate settings, seed).
    snapshot, validated, imputed, embedded, swept : stage handles
        The outputs of the training stages (:mod:`clusterflow.stages`).
    tags : dict, optional
        Run tags (the Prefect flow run id and URL).
    run_name : str, optional
        Name of the MLflow run: the Prefect flow run's name, so both tools show one name.
    start_time : datetime, optional
        Start of the run (the flow run's start, so the MLflow run spans the flow; default: now).
        ``pending`` versions created before it by dead processes are removed as orphans.

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
    target = _open_target(config, start_time)
    challenger = load_challenger(config, validated, embedded, swept)
    run_id = create_run(target.experiment_id, run_name=run_name, start_time=target.start, tags=tags)
    with mlflow.start_run(run_id=run_id), _deleted_unless_committed(target.name) as attempt:
        _log_run_record(config, snapshot, validated, imputed, swept, challenger.valid)
        orphans = clean_orphans(target.name, before_ms=target.started_ms)
        decision = gate_against_champion(target.name, challenger)
        model_uri, version = _register_pending(
            target.name, decision, snapshot, validated, swept, attempt
        )
        verdict = _regate_and_move_alias(target, config, challenger, decision, version, attempt)
        # bookkeeping: if this fails, the next registration re-tags the aliased version
        set_version_tag(target.name, version, STATE_TAG, "complete")
    return _registration(run_id, model_uri, version, target, verdict, orphans)


@dataclass(frozen=True)
class _Target:
    """Where the run and the model version go."""

    uri: str
    experiment_id: str
    name: str
    started_ms: int

    @property
    def start(self) -> datetime:
        """The run's start as a datetime (what :func:`create_run` dates the run from)."""
        return datetime.fromtimestamp(self.started_ms / 1000, tz=UTC)


@dataclass
class _Attempt:
    """The version this registration created, and whether its alias has moved (the commit)."""

    version: str | None = None
    committed: bool = False


@dataclass(frozen=True)
class _Verdict:
    """The final gate decision, whether the alias ``champion`` moved, and the logged record."""

    decision: gate.GateDecision
    promote: bool
    reason: str
    record: dict


def _open_target(config: TrainConfig, start_time: datetime | None) -> _Target:
    """Connect to the tracking store and make sure the experiment exists."""
    uri = connect(config.workspace)
    experiment_id = ensure_experiment(config.registry.experiment, config.workspace)
    started = int(start_time.timestamp() * 1000 if start_time is not None else time.time() * 1000)
    return _Target(uri, experiment_id, config.registry.model_name, started)


@contextmanager
def _deleted_unless_committed(name: str) -> Iterator[_Attempt]:
    """Delete the version registered inside the block if the block fails before its commit."""
    attempt = _Attempt()
    try:
        yield attempt
    except BaseException:
        if attempt.version is not None and not attempt.committed:
            logger.error("registration of %s failed; deleting version %s", name, attempt.version)
            delete_version(name, attempt.version)
        raise


def _log_run_record(
    config: TrainConfig,
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    swept: Swept,
    valid: pd.DataFrame,
) -> None:
    """Params, metrics, the training dataset and the artifacts of the active run."""
    run_record.log_params_and_metrics(config, snapshot, validated, imputed, swept)
    run_record.log_training_data(snapshot, validated, valid)
    run_record.log_artifacts(config, validated, imputed, swept)


def _register_pending(
    name: str,
    decision: gate.GateDecision,
    snapshot: Snapshot,
    validated: Validated,
    swept: Swept,
    attempt: _Attempt,
) -> tuple[str, str]:
    """Register the model, its cluster ids aligned to the champion's, as a ``pending`` version.

    Returns (model_uri, version); the version is recorded in ``attempt`` as soon as it exists.
    """
    mlflow.log_dict({str(k): v for k, v in decision.cluster_map.items()}, "cluster_map.json")
    with tempfile.TemporaryDirectory(prefix="clusterflow-model-") as tmp:
        staged = stage_with_cluster_map(swept.model_dir, Path(tmp) / "model", decision.cluster_map)
        model_uri, version = log_model_version(
            model_dir=staged,
            name=name,
            input_example=_input_example(validated),
            tags={"fingerprint": snapshot.fingerprint[:16]},
            version_tags={STATE_TAG: "pending", OWNER_TAG: owner()},
        )
        attempt.version = version
    return model_uri, version


def _input_example(validated: Validated, n: int = 5) -> pd.DataFrame:
    columns = input_columns(validated.column_roles)
    return pd.read_parquet(validated.valid_path, columns=columns).head(n)


def _regate_and_move_alias(
    target: _Target,
    config: TrainConfig,
    challenger: Challenger,
    decision: gate.GateDecision,
    version: str,
    attempt: _Attempt,
) -> _Verdict:
    """Under a lock on the store, gate again if the champion moved, then move the alias.

    Moving the alias is the commit point: ``attempt`` is marked committed right after it.
    """
    name = target.name
    with registry_lock(target.uri):
        decision = regate_if_moved(name, decision, challenger.model, challenger.gate_args)
        promote = decision.promote and config.registry.promote
        reason = decision.reason if config.registry.promote else "promotion disabled in config"
        record = run_record.log_gate(decision, promote, reason, version)
        set_alias(name, CHAMPION if promote else CHALLENGER, version)
        attempt.committed = True
        if promote:  # a challenger lost to the champion this version replaces: no longer one
            _clear_stale_challenger(name)
    return _Verdict(decision, promote, reason, record)


def _clear_stale_challenger(name: str) -> None:
    """Remove the ``challenger`` alias after a promotion (best effort: the alias moved already)."""
    try:
        clear_alias(name, CHALLENGER)
    except MlflowException as err:
        logger.warning("could not remove the 'challenger' alias of %s: %s", name, redact(str(err)))


def _registration(
    run_id: str,
    model_uri: str,
    version: str,
    target: _Target,
    verdict: _Verdict,
    orphans: list[str],
) -> Registration:
    """Report where the model went and build the :class:`Registration`."""
    decision = verdict.decision
    logger.info(
        "registered %s version %s; %s",
        target.name,
        version,
        "promoted to champion" if verdict.promote else f"not promoted: {verdict.reason}",
    )
    return Registration(
        run_id=run_id,
        model_uri=model_uri,
        model_version=version,
        promoted=verdict.promote,
        reason=verdict.reason,
        challenger_score=decision.challenger_score,
        champion_score=decision.champion_score,
        previous_champion=decision.champion_version,
        tracking_uri=redact(target.uri),
        cluster_map={str(k): int(v) for k, v in decision.cluster_map.items()},
        matched_share=decision.matched_share,
        gate_metric=decision.metric,
        gate=verdict.record,
        orphans_removed=orphans,
    )
