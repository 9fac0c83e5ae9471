"""Scoring a batch partitioned on a Dask cluster: the same rows out as the in-process ``score``.

The driver cuts the input as training does (CSV byte ranges sized to the workers' memory,
Parquet row groups), counts every partition's rows and column kinds on the workers, and ships the
model once to every worker. Each worker reads its partition, assigns it exactly as
:func:`clusterflow.scoring.score_table` assigns a whole batch (the model's imputer, encoder and
feature builder are fitted, so a row's cluster does not depend on the rows beside it) and writes
``<id>,cluster`` for its rows. The driver appends the partitions' files, in order, into the
output. Only per-partition counts reach the driver, never the rows.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.io import atomic_path
from clusterflow.model import ClusterModel
from clusterflow.partitioned._plan import Batch, PartitionJob, plan_batch
from clusterflow.partitioned._workers import _model_embedder, map_with_model
from clusterflow.schema import CLUSTER_COLUMN, ROW_ID
from clusterflow.scoring import (
    DETAIL_COLUMNS,
    assignment_ids,
    check_detail_names,
    check_readable_columns,
    featureless_rows,
    repeated_ids,
    score_frame,
    score_id_column,
    unreadable_numbers,
    unseen_categories,
)

__all__ = ["score_partitioned"]


def _score_partition(
    job: PartitionJob,
    model: ClusterModel,
    cache_path: str,
    id_column: str | None,
    details: bool,
    folder: str,
) -> dict[str, Any]:
    """Assign one partition and write its ``<id>,cluster`` rows (with a header) to ``folder``."""
    started = time.perf_counter()
    frame = job.read()
    embedder = _model_embedder(model, cache_path)
    sample, assigned = score_frame(model, frame, embedder=embedder)
    id_name, ids = assignment_ids(model, frame, id_column)
    named = id_name != ROW_ID
    if not named:  # the row number in the whole input, not in the partition
        ids = np.arange(job.offset, job.offset + len(frame))
    table = pd.DataFrame({id_name: ids, CLUSTER_COLUMN: assigned["cluster"].to_numpy()})
    for column in DETAIL_COLUMNS if details else ():
        table[column] = assigned[column].to_numpy()
    table.to_csv(Path(folder, f"{job.name}.csv"), index=False)
    return {
        "rows": len(table),
        "novel": int(assigned["novel"].sum()),
        "sizes": table["cluster"].value_counts().to_dict(),
        "unreadable": unreadable_numbers(model, frame),
        "featureless": featureless_rows(model, frame),
        "unseen_categories": unseen_categories(model, frame, sample.table),
        "ids": ids if named else None,  # repeats are found across partitions, on the client
        "id_fallback": None if named else model.roles.id_column,
        "seconds": time.perf_counter() - started,
    }


def _append_parts(folder: Path, count: int, out: str | Path) -> None:
    """Concatenate the partitions' CSV files into ``out``, keeping the first header only."""
    with atomic_path(out) as tmp, open(tmp, "wb") as target:
        for index in range(count):
            with open(folder / f"part-{index:05d}.csv", "rb") as part:
                header = part.readline()
                if index == 0:
                    target.write(header)
                shutil.copyfileobj(part, target)


def score_partitioned(
    model: ClusterModel,
    data: str | Path,
    *,
    client: Any,
    out: str | Path,
    model_uri: str,
    workspace: str | Path,
    id_column: str | None = None,
    details: bool = False,
    partition_bytes: int | None = None,
) -> dict[str, Any]:
    """Score ``data`` partitioned on the workers: what ``score_table`` returns, plus ``dask``.

    Parameters
    ----------
    model : ClusterModel
        The registered model (shipped once to every worker).
    data : str or Path
        A CSV or Parquet file, or a folder or glob of Parquet files.
    client : distributed.Client
        The cluster; its workers must see ``workspace`` (a shared folder).
    out, model_uri, workspace, id_column, details
        As for :func:`clusterflow.scoring.score_table`.
    partition_bytes : int, optional
        CSV bytes per partition (None: sized to the input, the workers and their memory).

    Returns
    -------
    dict
        What :func:`clusterflow.scoring.score_table` returns (its row notes added up over the
        partitions; repeated ids are found across them) and ``dask``: ``workers``,
        ``partitions``, ``worker_seconds`` per partition.
    """
    named = score_id_column(model, id_column)  # a wrong id fails here, not on every worker
    check_detail_names(named, details)
    batch = plan_batch(data, client, partition_bytes, text_columns=(named,) if named else ())
    Path(workspace).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".score-parts-", dir=workspace))
    try:
        stats = map_with_model(
            client, batch, model, workspace, _score_partition, id_column, details, str(folder)
        )
        check_readable_columns([s["unreadable"] for s in stats], batch.source)
        _append_parts(folder, len(batch.parts), out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _summary(stats, batch, out, model_uri)


def _added(stats: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Add up the partitions' row notes under ``key``: the count and the first example."""
    examples = [s[key]["example"] for s in stats if s[key]["example"]]
    return {
        "rows": int(sum(s[key]["rows"] for s in stats)),
        "example": examples[0] if examples else None,
    }


def _summary(
    stats: list[dict[str, Any]], batch: Batch, out: str | Path, model_uri: str
) -> dict[str, Any]:
    """Add up the partitions' counts: what ``score_table`` returns, plus ``dask``."""
    sizes: Counter = Counter()
    for s in stats:
        sizes.update(s["sizes"])
    return {
        "rows": int(sum(s["rows"] for s in stats)),
        "out": str(out),
        "model_uri": model_uri,
        "novel": int(sum(s["novel"] for s in stats)),
        "cluster_sizes": {str(k): int(sizes[k]) for k in sorted(sizes)},
        "unreadable": _added(stats, "unreadable"),
        "featureless": _added(stats, "featureless"),
        "unseen_categories": _added(stats, "unseen_categories"),
        "repeated_ids": repeated_ids(np.concatenate(ids))
        if (ids := [s["ids"] for s in stats if s["ids"] is not None])
        else {"rows": 0, "example": None},
        "id_fallback": next((s["id_fallback"] for s in stats if s["id_fallback"]), None),
        "dask": {
            "workers": batch.workers,
            "partitions": len(batch.parts),
            "worker_seconds": [round(s["seconds"], 3) for s in stats],
        },
    }
