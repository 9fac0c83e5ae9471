"""The deployments of ``prefect.yaml`` as plain data, for ``serve`` (the file is the one source).

The code is :mod:`clusterflow_orchestration.deployments.specs`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.deployments.specs import DeploymentSpec, load_specs

__all__ = ["DeploymentSpec", "load_specs"]
