"""Validate: lazy pandera checks; failing rows go to the quarantine with their reasons.

The code is :mod:`clusterflow_orchestration.tasks.validate`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.validate import validate_task

__all__ = ["validate_task"]
