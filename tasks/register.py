"""Register: log the run to MLflow, register the model, gate it, move the alias.

The code is :mod:`clusterflow_orchestration.tasks.register`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.register import gate_markdown, register_task

__all__ = ["gate_markdown", "register_task"]
