"""Deployment entrypoint: the training flow on the Dask cluster named by the environment.

``CLUSTERFLOW_DASK_ADDRESS`` is read when a flow-run process imports this module (a process
worker starts one process per flow run), so set it in the work pool's or deployment's
``job_variables.env``: ``tcp://scheduler:8786``, or ``local`` / ``local:N`` for a LocalCluster.
Unset, this is the plain training flow.
"""

from __future__ import annotations

from clusterflow_orchestration.deployments.runners import task_runner_from_env, training_flow_on

training_flow = training_flow_on(task_runner_from_env())
