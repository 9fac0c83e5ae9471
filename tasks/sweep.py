"""Sweep: compare algorithms and cluster counts, publish the table, plots and cluster cards.

The code is :mod:`clusterflow_orchestration.tasks.sweep`; this file of the checkout only re-exports
it.
"""

from clusterflow_orchestration.tasks.sweep import sweep_task

__all__ = ["sweep_task"]
