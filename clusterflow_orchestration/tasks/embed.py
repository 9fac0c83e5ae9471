"""Embed: encode the text column with the offline MiniLM model, reporting progress."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.progress import report
from clusterflow_orchestration.tasks.common import stage_store


@task(name="embed")
def embed_task(validated: stages.Validated, config: TrainConfig) -> stages.Embedded | None:
    """Embed distinct texts not yet cached; progress shows in the UI and the logs."""
    if not validated.column_roles.text_column:
        return None
    log = get_run_logger()
    artifact_id = create_progress_artifact(
        0.0, key="embedding-progress", description="Texts embedded"
    )

    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        share = 100.0 * done / max(total, 1)
        update_progress_artifact(artifact_id, share)
        rate = done / max(time.perf_counter() - started, 1e-9)
        log.info("embedded %d/%d new texts (%.0f%%, %.0f texts/s)", done, total, share, rate)
        report("embed", done, total, "texts")  # the terminal's bar (rate, ETA) listens

    embedded = stages.embed(validated, config, stage_store(config.workspace), progress=progress)
    update_progress_artifact(artifact_id, 100.0)
    report("embed", embedded.n_texts, embedded.n_texts, "texts")
    log.info(
        "%d texts (%d distinct) embedded with %s%s",
        embedded.n_texts,
        embedded.n_unique,
        embedded.model_id,
        " (reused)" if embedded.reused else "",
    )
    return embedded
