"""Validate: lazy pandera checks; failing rows go to the quarantine with their reasons."""

from __future__ import annotations

from prefect import get_run_logger, task

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow_orchestration.tasks.common import stage_store


@task(name="validate")
def validate_task(snapshot: stages.Snapshot, config: TrainConfig) -> stages.Validated:
    """Infer column roles, validate every row, quarantine the failures."""
    validated = stages.validate(snapshot, config, stage_store(config.workspace))
    roles = validated.column_roles
    log = get_run_logger()
    log.info(
        "%d valid rows, %d quarantined; numeric=%s categorical=%s text=%s",
        validated.n_valid,
        validated.n_quarantined,
        list(roles.numeric),
        list(roles.categorical),
        roles.text_column,
    )
    for column, why in roles.excluded.items():
        log.info("column %s not used: %s", column, why)
    return validated
