"""Outputs: the contract files of a run and the run's summary artifact.

The code is :mod:`clusterflow_orchestration.tasks.outputs`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.outputs import outputs_task, runner_ups_text, summary_markdown

__all__ = ["outputs_task", "runner_ups_text", "summary_markdown"]
