"""Register: log the run to MLflow, register the model, gate it, move the alias."""

from __future__ import annotations

from prefect import get_run_logger, runtime, task

from clusterflow import pipeline
from clusterflow.config import TrainConfig
from clusterflow.registration import Registration, register_training


def _prefect_tags() -> dict:
    flow_run_id = runtime.flow_run.id
    tags = {"prefect.flow_run_id": str(flow_run_id)} if flow_run_id else {}
    url = runtime.flow_run.ui_url
    if url:
        tags["prefect.flow_run_url"] = str(url)
    return tags


@task(name="register")
def register_task(
    config: TrainConfig,
    snapshot: pipeline.Snapshot,
    validated: pipeline.Validated,
    imputed: pipeline.Imputed,
    embedded: pipeline.Embedded | None,
    swept: pipeline.Swept,
) -> Registration:
    """Log and register the model; ``champion`` moves only when the gate is passed."""
    reg = register_training(
        config=config,
        snapshot=snapshot,
        validated=validated,
        imputed=imputed,
        embedded=embedded,
        swept=swept,
        tags=_prefect_tags(),
    )
    get_run_logger().info(
        "model %s (%s); %s", reg.model_uri, "champion" if reg.promoted else "challenger", reg.reason
    )
    return reg
