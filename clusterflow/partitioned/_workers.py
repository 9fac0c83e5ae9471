"""What runs on the workers, one partition at a time (steps 3, 5 and 7 of the package docstring)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.model import ClusterModel
from clusterflow.partitioned._plan import Batch, Partition, PartitionJob, read_partition
from clusterflow.schema import ColumnRoles, validate_records
from clusterflow.stages.common import sanitise_for_parquet

_WORKER_EMBEDDERS: dict = {}


def _worker_embedder(spec_fields: tuple, cache_path: str):
    """Return the encoder of this worker process, loaded once and kept for every partition."""
    key = (spec_fields, cache_path)
    if key not in _WORKER_EMBEDDERS:
        from clusterflow.model import EmbedderSpec

        _WORKER_EMBEDDERS[key] = EmbedderSpec(*spec_fields).build(cache_path=cache_path)
    return _WORKER_EMBEDDERS[key]


def _model_embedder(model: ClusterModel, cache_path: str):
    """Return this worker's encoder for ``model``'s text column (None for a tabular model)."""
    return _worker_embedder(astuple(model.embedder), cache_path) if model.embedder else None


def _take_rows(path: str, positions: np.ndarray, columns: list[str] | None = None):
    if path.endswith(".npy"):
        return np.load(path, mmap_mode="r")[positions].copy()
    if path.endswith(".parquet"):
        return pd.read_parquet(path, columns=columns).iloc[positions]
    raise ValueError(path)


def _take_raw(part: Partition, dtypes: dict, positions: np.ndarray, offset: int) -> pd.DataFrame:
    frame = read_partition(part, dtypes).iloc[positions]
    frame.index = frame.index + offset
    return frame


def _validate_partition(
    job: PartitionJob, roles: dict, drop_incomplete: bool, folder: str, source: str
) -> dict:
    started = time.perf_counter()
    frame = sanitise_for_parquet(job.read())
    column_roles = ColumnRoles.from_dict(roles)
    outcome = validate_records(frame, column_roles, max_text_chars=1_000_000, source=source)
    reasons = dict(outcome.reasons)
    valid = outcome.valid
    if drop_incomplete and column_roles.features:
        gaps = valid[list(column_roles.features)].isna()
        incomplete = gaps.any(axis=1)
        for row in valid.index[incomplete]:
            empty = ", ".join(gaps.columns[gaps.loc[row]])
            reasons[int(row)] = f"gaps in {empty} (impute=drop was asked)"
        valid = valid.loc[~incomplete]
    quarantine = pd.DataFrame(
        {"row": list(reasons.keys()), "reason": list(reasons.values())}, dtype=object
    ).sort_values("row")
    name = f"{job.name}.parquet"
    sanitise_for_parquet(valid).to_parquet(Path(folder, "valid", name), index=True)
    quarantine.astype({"row": "int64", "reason": str}).to_parquet(
        Path(folder, "quarantine", name), index=False
    )
    return {
        "rows": len(frame),
        "valid": len(valid),
        "quarantined": len(quarantine),
        "seconds": time.perf_counter() - started,
    }


def _transform_partition(
    index: int,
    folder: str,
    roles: dict,
    imputer,
    spec_fields: tuple | None,
    cache_path: str,
) -> dict:
    from clusterflow.embed import embed_column

    name = f"part-{index:05d}"
    column_roles = ColumnRoles.from_dict(roles)
    valid_path = Path(folder, "valid", f"{name}.parquet")
    seconds = {}
    started = time.perf_counter()
    table = pd.read_parquet(valid_path, columns=list(column_roles.features))
    table = table.astype({c: float for c in column_roles.numeric})
    missing = int(table.isna().sum().sum())
    filled = imputer.transform(table) if imputer is not None else table
    filled.to_parquet(Path(folder, "imputed", f"{name}.parquet"), index=True)
    seconds["impute"] = time.perf_counter() - started
    out: dict[str, Any] = {"missing_cells": missing, "n_with_text": 0, "unique": 0}
    if spec_fields is not None:
        started = time.perf_counter()
        texts = pd.read_parquet(valid_path, columns=[column_roles.text_column])
        embedder = _worker_embedder(spec_fields, cache_path)
        vectors, has_text = embed_column(embedder, texts[column_roles.text_column].tolist())
        np.save(Path(folder, "embeddings", f"{name}.npy"), vectors)
        out["n_with_text"] = int(has_text.sum())
        out["unique"] = int(embedder.last_stats.get("unique", 0))
        seconds["embed"] = time.perf_counter() - started
    out["seconds"] = seconds
    return out


def _assign_partition(index: int, folder: str, model: ClusterModel, has_text: bool) -> dict:
    started = time.perf_counter()
    name = f"part-{index:05d}"
    table = pd.read_parquet(Path(folder, "imputed", f"{name}.parquet"))
    emb = np.load(Path(folder, "embeddings", f"{name}.npy")) if has_text else None
    if len(table):
        labels, distance = model.assign(model.features.transform(table, embeddings=emb))
    else:  # every row of this partition was quarantined
        labels, distance = np.zeros(0, dtype=int), np.zeros(0)
    np.save(Path(folder, "labels", f"{name}.npy"), np.asarray(labels, dtype=int))
    np.save(Path(folder, "distance", f"{name}.npy"), np.asarray(distance, dtype=float))
    return {"seconds": time.perf_counter() - started}


# ------------------------------------------------------------ gathering to the driver
def _gather(client, futures) -> list:
    return client.gather(futures)


def map_partitions(client: Any, batch: Batch, work: Callable[..., Any], *args: Any) -> list:
    """Run ``work(job, *args)`` on the workers for every partition of ``batch``; results in order.

    ``job`` is the partition's :class:`PartitionJob`; ``args`` go to every call alike.
    """
    futures = [client.submit(work, job, *args, pure=False) for job in batch.jobs()]
    return _gather(client, futures)


def map_with_model(
    client: Any,
    batch: Batch,
    model: ClusterModel,
    workspace: str | Path,
    work: Callable[..., Any],
    *args: Any,
) -> list:
    """Ship ``model`` once to every worker; run ``work(job, model, cache_path, *args)`` on each.

    ``cache_path`` is the text-vector cache in ``workspace``, which the workers share. The
    partitioned score and monitor run their partitions through the champion this way.
    """
    model_on_workers = client.scatter(model, broadcast=True)
    cache_path = str(Path(workspace) / "embeddings.sqlite")
    return map_partitions(client, batch, work, model_on_workers, cache_path, *args)


def _positions_by_part(positions: np.ndarray, offsets: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Split sorted global positions into (partition, local positions) pairs."""
    owner = np.searchsorted(offsets, positions, side="right") - 1
    out = []
    for part in np.unique(owner):
        local = positions[owner == part] - offsets[part]
        out.append((int(part), local))
    return out


def _gather_rows(client, paths: list[str], offsets: np.ndarray, positions: np.ndarray, **kw):
    pieces = [
        client.submit(_take_rows, paths[p], local, pure=False, **kw)
        for p, local in _positions_by_part(positions, offsets)
    ]
    got = client.gather(pieces)
    if not got:
        return None
    if isinstance(got[0], np.ndarray):
        return np.concatenate(got)
    return pd.concat(got)


def _concat_npy(paths: list[str], target: Path) -> None:
    """Concatenate .npy files row-wise into ``target`` without holding them all in memory."""
    shapes = [np.load(p, mmap_mode="r").shape for p in paths]
    first = np.load(paths[0], mmap_mode="r")
    out = np.lib.format.open_memmap(
        target, mode="w+", dtype=first.dtype, shape=(sum(s[0] for s in shapes), *shapes[0][1:])
    )
    start = 0
    for path, shape in zip(paths, shapes, strict=True):
        out[start : start + shape[0]] = np.load(path, mmap_mode="r")
        start += shape[0]
    out.flush()
    del out
