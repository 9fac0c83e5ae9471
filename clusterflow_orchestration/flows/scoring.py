"""Batch scoring: assign every row of a table with a registered model."""

from __future__ import annotations

from prefect import flow

from clusterflow.config import ScoreConfig
from clusterflow.scoring import score_id_column
from clusterflow_orchestration.tasks.score import load_model_task, read_batch_task, score_task


@flow(name="clusterflow-score", log_prints=True)
def scoring_flow(config: ScoreConfig) -> dict:
    """Score ``config.data`` with ``config.model_uri``; write ``<id>,cluster`` to ``config.out``.

    Parameters
    ----------
    config : ScoreConfig
        The table to score, the registered model to use and where to write the assignments.
    """
    model, model_run_id = load_model_task(config.model_uri, config.workspace)
    # the model first: its id column, when config names none, is read as text too
    frame = read_batch_task(config.data, score_id_column(model, config.id_column))
    return score_task(model, frame, config, model_run_id)
