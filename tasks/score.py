"""Scoring tasks: load a registered model, read a batch, assign every row.

The code is :mod:`clusterflow_orchestration.tasks.score`; this file of the checkout only re-exports
it.
"""

from clusterflow_orchestration.tasks.score import load_model_task, read_batch_task, score_task

__all__ = ["load_model_task", "read_batch_task", "score_task"]
