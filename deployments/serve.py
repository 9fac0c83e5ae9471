"""Serve the deployments of ``deployments/prefect.yaml`` from one process, without a work pool.

The code is :mod:`clusterflow_orchestration.deployments.serve`; this file of the checkout only
re-exports it, so that ``python -m deployments.serve`` runs from the checkout as before.
"""

import sys

from clusterflow_orchestration.deployments.serve import (
    CONFIG_MODELS,
    DEFAULT_MODEL_NAME,
    ENTRYPOINT_PACKAGE,
    ENVIRONMENTS,
    PREFECT_YAML,
    ROOT,
    DeploymentSpec,
    add_arguments,
    build_deployments,
    check_not_served_by_a_worker,
    load_specs,
    main,
    parse_overrides,
    retire_triggers,
    run,
    serve_deployments,
    served_flows,
)

__all__ = [
    "CONFIG_MODELS",
    "DEFAULT_MODEL_NAME",
    "ENTRYPOINT_PACKAGE",
    "ENVIRONMENTS",
    "PREFECT_YAML",
    "ROOT",
    "DeploymentSpec",
    "add_arguments",
    "build_deployments",
    "check_not_served_by_a_worker",
    "load_specs",
    "main",
    "parse_overrides",
    "retire_triggers",
    "run",
    "serve_deployments",
    "served_flows",
]

if __name__ == "__main__":
    sys.exit(main())
