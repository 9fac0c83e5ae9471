"""Deployment entrypoint: the training flow on the Dask cluster named by the environment.

Prefect entrypoint ``deployments/dask_training.py:training_flow`` (deployments name flows by file
path). The code is :mod:`clusterflow_orchestration.deployments.dask_training`; this file of the
checkout only re-exports it.
"""

from clusterflow_orchestration.deployments.dask_training import training_flow

__all__ = ["training_flow"]
