"""The training flow with its data stages partitioned over a Dask cluster (``--dask-address``).

Prefect entrypoint ``flows/partitioned.py:partitioned_training_flow`` (deployments name flows by
file path). The code is :mod:`clusterflow_orchestration.flows.partitioned`; this file of the
checkout only re-exports it.
"""

from clusterflow_orchestration.flows.partitioned import (
    DASK_STAGES,
    dask_stages,
    partitioned_training_flow,
)

__all__ = ["DASK_STAGES", "dask_stages", "partitioned_training_flow"]
