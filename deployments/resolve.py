"""Make the deployments of ``prefect.yaml`` run where the user works, for the model they use.

The code is :mod:`clusterflow_orchestration.deployments.resolve`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.deployments.resolve import (
    DRIFT_RESOURCE_PREFIX,
    INPUT_KEYS,
    OUTPUT_KEYS,
    PACKAGE_ROOT,
    PREFECT_YAML,
    ROOT,
    champion_uri,
    resolve_config,
    resolve_deployment,
    resolve_document,
    resolve_path,
    resolve_trigger,
)

__all__ = [
    "DRIFT_RESOURCE_PREFIX",
    "INPUT_KEYS",
    "OUTPUT_KEYS",
    "PACKAGE_ROOT",
    "PREFECT_YAML",
    "ROOT",
    "champion_uri",
    "resolve_config",
    "resolve_deployment",
    "resolve_document",
    "resolve_path",
    "resolve_trigger",
]
