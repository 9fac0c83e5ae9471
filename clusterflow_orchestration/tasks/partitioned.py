"""The partitioned stages on a Dask cluster, as one task that drives the cluster.

The per-partition work is submitted by :func:`clusterflow.partitioned.train_partitioned` to the
Dask scheduler itself (one Dask task per partition and stage), so this Prefect task only holds
the client, the plan and the samples gathered for fitting.
"""

from __future__ import annotations

from prefect import get_run_logger, task

from clusterflow.config import TrainConfig
from clusterflow.distributed import dask_client
from clusterflow.partitioned import PartitionedRun, train_partitioned
from clusterflow_orchestration.tasks.common import stage_store


@task(name="partitioned-stages")
def partitioned_task(
    config: TrainConfig, dask_address: str, partition_bytes: int | None = None
) -> PartitionedRun:
    """Ingest, validate, impute, embed, sweep and assign over partitions on ``dask_address``."""
    with dask_client(dask_address) as client:
        run = train_partitioned(
            config, stage_store(config.workspace), client, partition_bytes=partition_bytes
        )
    get_run_logger().info(
        "%d rows in %d partitions on %d Dask workers: %d valid, %d quarantined; %s k=%d; "
        "seconds per stage %s",
        run.snapshot.n_rows,
        run.dask["partitions"],
        run.dask["workers"],
        run.validated.n_valid,
        run.validated.n_quarantined,
        run.swept.algorithm,
        run.swept.k,
        run.dask["seconds"],
    )
    return run
