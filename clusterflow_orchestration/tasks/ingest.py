"""Ingest: read the input file into a content-addressed snapshot (retried on I/O errors only).

See :mod:`clusterflow_orchestration.tasks.common` for which tasks retry and why.
"""

from __future__ import annotations

from prefect import get_run_logger, task

from clusterflow import stages
from clusterflow_orchestration.tasks.common import retry_transient, stage_store


@task(name="ingest", retries=3, retry_delay_seconds=[1, 2, 5], retry_condition_fn=retry_transient)
def ingest_task(data: str, workspace: str, id_column: str | None = None) -> stages.Snapshot:
    """Read ``data`` and store it under its content hash; I/O errors are retried with backoff.

    The ``id_column`` is read as text, as written (an integer id with a blank stays ``1000``).
    """
    text_columns = (id_column,) if id_column else ()
    snapshot = stages.ingest(data, stage_store(workspace), text_columns=text_columns)
    get_run_logger().info(
        "ingested %s: %d rows x %d columns, sha256 %s%s",
        data,
        snapshot.n_rows,
        len(snapshot.columns),
        snapshot.fingerprint[:12],
        " (reused)" if snapshot.reused else "",
    )
    return snapshot
