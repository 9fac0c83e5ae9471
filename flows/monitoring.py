"""Monitoring: drift of a new batch against the champion's reference; emits the retrain event.

Prefect entrypoint ``flows/monitoring.py:monitoring_flow`` (deployments name flows by file path).
The code is :mod:`clusterflow_orchestration.flows.monitoring`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.flows.monitoring import monitoring_flow

__all__ = ["monitoring_flow"]
