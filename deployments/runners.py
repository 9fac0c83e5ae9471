"""Task runners for the training flow: the default thread pool, or a Dask cluster.

The code is :mod:`clusterflow_orchestration.deployments.runners`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.deployments.runners import (
    DASK_ADDRESS_ENV,
    dask_task_runner,
    task_runner_for,
    task_runner_from_env,
    training_flow_on,
)

__all__ = [
    "DASK_ADDRESS_ENV",
    "dask_task_runner",
    "task_runner_for",
    "task_runner_from_env",
    "training_flow_on",
]
