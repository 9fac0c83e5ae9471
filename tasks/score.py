"""Scoring tasks: load a registered model, read a batch, assign every row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from clusterflow.config import ScoreConfig
from clusterflow.io import read_table, write_csv
from clusterflow.monitoring import assignment_ids, score_frame
from clusterflow.registry import connect, load_cluster_model
from tasks.common import retry_transient


@task(name="load-model", retries=2, retry_delay_seconds=[2, 5], retry_condition_fn=retry_transient)
def load_model_task(model_uri: str, workspace: str):
    """Load a model from the configured registry (retried on I/O errors: a server hiccup)."""
    connect(workspace)
    return load_cluster_model(model_uri)


@task(
    name="read-batch", retries=3, retry_delay_seconds=[1, 2, 5], retry_condition_fn=retry_transient
)
def read_batch_task(data: str) -> pd.DataFrame:
    """Read a batch to score or monitor (retried on I/O errors, like ingest)."""
    return read_table(data)


@task(name="score")
def score_task(
    model, frame: pd.DataFrame, config: ScoreConfig, model_run_id: str | None = None
) -> dict:
    """Assign every row and write ``<id>,cluster`` (plus distance/novel with details).

    Goes through the unwrapped :class:`ClusterModel`, so integer columns of the batch are
    accepted as they are (the served pyfunc's signature declares numeric inputs as double).
    """
    embedder = (
        model.embedder.build(Path(config.workspace) / "embeddings.sqlite")
        if model.embedder
        else None
    )
    _, assigned = score_frame(model, frame, embedder=embedder)
    id_name, ids = assignment_ids(model, frame, config.id_column)
    out = pd.DataFrame({id_name: ids, "cluster": assigned["cluster"].to_numpy()})
    if config.details:
        out["distance"] = assigned["distance"].to_numpy()
        out["novel"] = assigned["novel"].to_numpy()
    write_csv(out, config.out)
    sizes = out["cluster"].value_counts().sort_index()
    get_run_logger().info("scored %d rows with %s into %s", len(out), config.model_uri, config.out)
    return {
        "rows": len(out),
        "out": config.out,
        "model_uri": config.model_uri,
        "model_run_id": model_run_id,
        "novel": int(assigned["novel"].sum()),
        "cluster_sizes": {str(k): int(v) for k, v in sizes.items()},
    }
