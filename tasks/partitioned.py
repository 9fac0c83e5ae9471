"""The partitioned stages on a Dask cluster, as one task that drives the cluster.

The code is :mod:`clusterflow_orchestration.tasks.partitioned`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.partitioned import partitioned_task

__all__ = ["partitioned_task"]
