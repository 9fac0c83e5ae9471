"""Ingest: read the input file into a content-addressed snapshot (retried on I/O errors only).

The code is :mod:`clusterflow_orchestration.tasks.ingest`; this file of the checkout only
re-exports it.
"""

from clusterflow_orchestration.tasks.ingest import ingest_task

__all__ = ["ingest_task"]
