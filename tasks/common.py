"""What every task shares: the stage store of a workspace, retry rules, artifact helpers.

The code is :mod:`clusterflow_orchestration.tasks.common`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.common import markdown_table, retry_transient, stage_store

__all__ = ["markdown_table", "retry_transient", "stage_store"]
