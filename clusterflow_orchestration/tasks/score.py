"""Scoring tasks: load a registered model, read a batch, assign every row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from clusterflow.config import ScoreConfig
from clusterflow.io import read_table
from clusterflow.model_registry import connect, load_cluster_model
from clusterflow.scoring import score_notes, score_table
from clusterflow_orchestration.tasks.common import retry_transient


@task(name="load-model", retries=2, retry_delay_seconds=[2, 5], retry_condition_fn=retry_transient)
def load_model_task(model_uri: str, workspace: str):
    """Load a model from the configured registry (retried on I/O errors: a server hiccup)."""
    connect(workspace)
    return load_cluster_model(model_uri)


@task(
    name="read-batch", retries=3, retry_delay_seconds=[1, 2, 5], retry_condition_fn=retry_transient
)
def read_batch_task(data: str, id_column: str | None = None) -> pd.DataFrame:
    """Read a batch to score or monitor (retried on I/O errors, like ingest).

    The ``id_column`` is read as text, as written (an integer id with a blank stays ``1000``).
    """
    return read_table(data, text_columns=(id_column,) if id_column else ())


@task(name="score")
def score_task(
    model, frame: pd.DataFrame, config: ScoreConfig, model_run_id: str | None = None
) -> dict:
    """Assign every row and write ``<id>,cluster`` (plus distance/novel with details).

    Goes through the unwrapped :class:`ClusterModel`, so integer columns of the batch are
    accepted as they are (the served pyfunc's signature declares numeric inputs as double).
    """
    result = score_table(
        model,
        frame,
        out=config.out,
        model_uri=config.model_uri,
        workspace=config.workspace,
        id_column=config.id_column,
        details=config.details,
        source=Path(config.data).name,
    )
    logger = get_run_logger()
    logger.info("scored %d rows with %s into %s", result["rows"], config.model_uri, config.out)
    for line in score_notes(result):
        logger.warning(line)
    return {**result, "model_run_id": model_run_id}
