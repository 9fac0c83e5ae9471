"""Monitoring a batch partitioned on a Dask cluster: the in-process drift result, from partitions.

Each worker reads its partitions, validates them against the champion's schema and runs the valid
rows through the champion (imputer, encoder loaded once per worker, features, nearest cluster),
exactly as :func:`clusterflow.monitoring.monitor_frame` does for a whole batch. What reaches the
driver is each partition's *drift view* (the imputed feature columns, the text vectors, the
cluster and distance of every valid row) and its quarantined rows, never the raw rows. The driver
joins the views in row order and compares them with the champion's reference in one call, so the
result is the in-process one: the tests compare every statistic on the whole batch, and a sample
would change them. The driver therefore holds the compact view of every valid row (about 1.5 KB
per row with text, a few numbers without).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.drift import DriftSample, DriftThresholds
from clusterflow.errors import ValidationFailed
from clusterflow.model import ClusterModel
from clusterflow.monitoring import MonitorOutcome, compare_batch, reference_sample, split_batch
from clusterflow.partitioned._plan import PartitionJob, plan_batch
from clusterflow.partitioned._workers import _model_embedder, map_with_model
from clusterflow.scoring import score_frame

__all__ = ["monitor_partitioned"]


@dataclass(frozen=True)
class _PartitionView:
    """What a worker sends back of one partition: its row count, drift view and quarantine."""

    rows: int
    sample: DriftSample | None
    """The valid rows as the champion sees them (None when no row is valid)."""
    quarantine: pd.DataFrame | None
    """The rows that failed validation, plus ``reason`` (None for an empty partition)."""


def _monitor_partition(job: PartitionJob, model: ClusterModel, cache_path: str) -> _PartitionView:
    """Validate one partition and run its valid rows through the champion: view + quarantine."""
    frame = job.read()
    if frame.empty:
        return _PartitionView(rows=0, sample=None, quarantine=None)
    valid, quarantine = split_batch(model, frame, allow_empty=True, source=Path(job.part.path).name)
    sample = None
    if len(valid):
        embedder = _model_embedder(model, cache_path)
        sample, _ = score_frame(model, valid, embedder=embedder)
    return _PartitionView(rows=len(frame), sample=sample, quarantine=quarantine)


def _joined(samples: list[DriftSample]) -> DriftSample:
    """One drift sample of the partitions' samples, in partition order."""
    vectors = [s.embeddings for s in samples if s.embeddings is not None]
    return DriftSample(
        table=pd.concat([s.table for s in samples], ignore_index=True),
        embeddings=np.vstack(vectors) if vectors else None,
        clusters=np.concatenate([s.clusters for s in samples]),
        distances=np.concatenate([s.distances for s in samples]),
        novel=np.concatenate([s.novel for s in samples]),
        missing=(
            pd.concat([s.missing for s in samples], ignore_index=True)
            if all(s.missing is not None for s in samples)
            else None
        ),
    )


def _join_partitions(
    views: list[_PartitionView], source: str
) -> tuple[int, pd.DataFrame, DriftSample]:
    """Join the partitions' views in order: rows in, quarantined rows, the valid rows' sample.

    Raises
    ------
    ValidationFailed
        The batch has no rows, or no row passes (``source`` names the batch).
    """
    rows_in = sum(view.rows for view in views)
    if rows_in == 0:
        raise ValidationFailed(f"{source}: the batch has no rows", hint="monitor a file with rows")
    quarantined = [view.quarantine for view in views if view.quarantine is not None]
    quarantine = pd.concat(quarantined) if quarantined else pd.DataFrame()
    samples = [view.sample for view in views if view.sample is not None]
    if not samples:
        examples = "; ".join(
            f"row {row}: {reason}" for row, reason in quarantine["reason"].head(3).items()
        )
        raise ValidationFailed(
            f"{source}: every row failed validation ({rows_in} rows; e.g. {examples})",
            hint="fix those rows, or the column options that make them fail",
        )
    return rows_in, quarantine, _joined(samples)


def monitor_partitioned(
    model: ClusterModel,
    data: str | Path,
    *,
    client: Any,
    workspace: str | Path,
    partition_bytes: int | None = None,
    thresholds: DriftThresholds | None = None,
    random_state: int = 0,
) -> MonitorOutcome:
    """Compare the batch ``data`` with the model's reference, validating and scoring on workers.

    Parameters
    ----------
    model : ClusterModel
        The champion (it carries the reference); shipped once to every worker.
    data : str or Path
        A CSV or Parquet file, or a folder or glob of Parquet files.
    client : distributed.Client
        The cluster; its workers must see ``data`` and ``workspace``.
    workspace : str or Path
        Where the workers keep the text-vector cache.
    partition_bytes : int, optional
        CSV bytes per partition (None: sized to the input, the workers and their memory).
    thresholds, random_state
        As for :func:`clusterflow.monitoring.monitor_frame`.

    Returns
    -------
    MonitorOutcome
        The same result :func:`clusterflow.monitoring.monitor_frame` gives for the whole batch.

    Raises
    ------
    ValidationFailed
        The model has no reference, the batch has no rows, or no row passes.
    """
    reference = reference_sample(model)
    id_column = model.roles.id_column
    batch = plan_batch(
        data, client, partition_bytes, text_columns=(id_column,) if id_column else ()
    )
    views = map_with_model(client, batch, model, workspace, _monitor_partition)
    rows_in, quarantine, sample = _join_partitions(views, Path(data).name)
    return compare_batch(
        model,
        reference,
        sample,
        rows_in=rows_in,
        quarantine=quarantine,
        thresholds=thresholds,
        random_state=random_state,
    )
