"""Embed: encode the text column with the offline MiniLM model, reporting progress."""

from __future__ import annotations

import sys
import time

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from clusterflow import pipeline
from clusterflow.config import TrainConfig
from tasks.common import stage_store


def terminal_bar(done: int, total: int, rate: float, width: int = 30) -> None:
    """Draw a progress bar on stderr when it is a terminal (logs carry the same numbers)."""
    if not sys.stderr.isatty():
        return
    filled = int(width * done / max(total, 1))
    eta = (total - done) / rate if rate > 0 else 0
    sys.stderr.write(f"\r  embedding [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"{rate:.0f}/s eta {eta:.0f}s ")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@task(name="embed")
def embed_task(validated: pipeline.Validated, config: TrainConfig) -> pipeline.Embedded | None:
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
        terminal_bar(done, total, rate)

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
