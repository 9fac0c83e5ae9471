"""Embed: encode the text column with the offline MiniLM model, reporting progress."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from clusterflow import pipeline
from clusterflow.config import TrainConfig
from tasks.common import stage_store


@task(name="embed")
def embed_task(validated: pipeline.Validated, config: TrainConfig) -> pipeline.Embedded | None:
    """Embed distinct texts not yet cached; progress shows in the UI and the logs."""
    if not validated.column_roles.text_column:
        return None
    log = get_run_logger()
    artifact_id = create_progress_artifact(
        0.0, key="embedding-progress", description="Texts embedded"
    )

    def progress(done: int, total: int) -> None:
        share = 100.0 * done / max(total, 1)
        update_progress_artifact(artifact_id, share)
        log.info("embedded %d/%d new texts (%.0f%%)", done, total, share)

    embedded = pipeline.embed(validated, config, stage_store(config.workspace), progress=progress)
    update_progress_artifact(artifact_id, 100.0)
    log.info(
        "%d texts (%d distinct) embedded with %s%s",
        embedded.n_texts,
        embedded.n_unique,
        embedded.model_id,
        " (reused)" if embedded.reused else "",
    )
    return embedded
