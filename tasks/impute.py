"""Impute: choose the imputer by mask-and-score and fill every gap of the valid rows.

The code is :mod:`clusterflow_orchestration.tasks.impute`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.impute import impute_task

__all__ = ["impute_task"]
