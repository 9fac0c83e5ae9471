"""Recorded settings: a drift retrain trains with the settings the drifted model was trained with.

The drift trigger starts the training deployment with ``settings_from`` set to the model that
drifted; without this task it would train with the deployment's own parameters (the demo's
columns), which fail on any other data.
"""

from __future__ import annotations

from prefect import get_run_logger, task

from clusterflow.config import TrainConfig
from clusterflow_orchestration.tasks.common import retry_transient


@task(
    name="recorded-settings",
    retries=2,
    retry_delay_seconds=[2, 5],
    retry_condition_fn=retry_transient,
)
def recorded_settings_task(config: TrainConfig) -> TrainConfig:
    """Return ``config`` with the columns and stage settings of ``config.settings_from``."""
    from clusterflow.model_registry import connect, recorded_train_config

    assert config.settings_from is not None  # noqa: S101 - the flow calls this only then
    connect(config.workspace)
    resolved = config.with_settings_of(recorded_train_config(config.settings_from))
    get_run_logger().info(
        "training %s with the settings of %s: text column %s, id column %s, excluded %s",
        resolved.data,
        config.settings_from,
        resolved.text_column,
        resolved.id_column,
        list(resolved.exclude_columns),
    )
    return resolved
