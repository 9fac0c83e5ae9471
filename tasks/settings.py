"""Recorded settings: a drift retrain trains with the settings the drifted model was trained with.

The code is :mod:`clusterflow_orchestration.tasks.settings`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.settings import recorded_settings_task

__all__ = ["recorded_settings_task"]
