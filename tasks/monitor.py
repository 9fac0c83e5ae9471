"""Monitoring tasks: compare a batch with the champion's reference, report, emit the event.

The code is :mod:`clusterflow_orchestration.tasks.monitor`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.monitor import (
    DRIFT_EVENT,
    drift_metrics,
    drift_partitioned_task,
    drift_task,
    emit_drift_task,
    log_drift_to_run,
    report_task,
    thresholds_from,
)

__all__ = [
    "DRIFT_EVENT",
    "drift_metrics",
    "drift_partitioned_task",
    "drift_task",
    "emit_drift_task",
    "log_drift_to_run",
    "report_task",
    "thresholds_from",
]
