"""The driver: plans, fits on samples and gathers small results; one function per step."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow import stages
from clusterflow.config import ImputeMethod, TrainConfig
from clusterflow.errors import InputError, ValidationFailed
from clusterflow.partitioned._context import StageContext
from clusterflow.partitioned._fit import finish_model, fit_imputer, sweep_on_sample
from clusterflow.partitioned._plan import Batch, data_fingerprint, input_files, plan_batch
from clusterflow.partitioned._workers import (
    _assign_partition,
    _concat_npy,
    _gather,
    _positions_by_part,
    _take_raw,
    _transform_partition,
    _validate_partition,
    map_partitions,
)
from clusterflow.schema import ColumnRoles
from clusterflow.stages.common import sanitise_for_parquet
from clusterflow.store import StageStore

FIT_ROWS = stages.FIT_ROWS
"""Size of the seeded samples the roles (of raw rows), the imputer and the feature builder (of
training rows) are fitted on."""


@dataclass
class PartitionedRun:
    """The handles of a partitioned run (as the in-process stages return) and its Dask facts."""

    snapshot: stages.Snapshot
    validated: stages.Validated
    imputed: stages.Imputed
    embedded: stages.Embedded | None
    swept: stages.Swept
    dask: dict = field(default_factory=dict)


def _plan(config: TrainConfig, client: Any, partition_bytes: int | None) -> Batch:
    """Cut the input and count every partition's rows and column kinds."""
    text_columns = (config.id_column,) if config.id_column else ()
    batch = plan_batch(config.data, client, partition_bytes, text_columns=text_columns)
    if batch.n_rows == 0:
        raise InputError(
            f"{batch.source}: the header has no data rows below it",
            hint="export the table with its rows",
        )
    return batch


def _roles(config: TrainConfig, client: Any, plan: Batch) -> ColumnRoles:
    """Roles from a seeded sample of raw rows: all rows up to FIT_ROWS, as in-process."""
    positions = stages.fit_sample(plan.n_rows, FIT_ROWS, config.random_state)
    positions = np.arange(plan.n_rows) if positions is None else positions
    raw = client.gather(
        [
            client.submit(
                _take_raw, plan.parts[p], plan.dtypes, local, int(plan.offsets[p]), pure=False
            )
            for p, local in _positions_by_part(positions, plan.offsets)
        ]
    )
    sample = sanitise_for_parquet(pd.concat(raw))
    return stages.roles_for(sample, config, plan.source)


def _fresh(folder: Path) -> None:
    """Empty the run's stage folder and make its per-partition subfolders."""
    if folder.exists():
        shutil.rmtree(folder)
    for sub in ("valid", "quarantine", "imputed", "embeddings", "labels", "distance"):
        (folder / sub).mkdir(parents=True, exist_ok=True)


def _validate(
    config: TrainConfig, client: Any, plan: Batch, roles: ColumnRoles, folder: Path, key: str
) -> tuple[StageContext, list[dict]]:
    """Validate every partition on the workers; return the context of the later steps."""
    _fresh(folder)
    drop = config.impute.method == ImputeMethod.drop
    stats = map_partitions(
        client, plan, _validate_partition, roles.to_dict(), drop, str(folder), plan.source
    )
    n_valid = sum(s["valid"] for s in stats)
    n_quarantined = sum(s["quarantined"] for s in stats)
    if n_valid + n_quarantined != plan.n_rows:
        raise ValidationFailed(
            f"row accounting broken: {plan.n_rows} read, {n_valid} valid, "
            f"{n_quarantined} quarantined",
            hint="report this as a bug",
        )
    if n_valid == 0 and drop:
        raise ValidationFailed(
            f"{plan.source}: every row has a gap and impute=drop was asked",
            hint="use an imputer (the default 'auto') instead of dropping rows",
        )
    quarantine = pd.concat(
        [pd.read_parquet(p) for p in sorted((folder / "quarantine").glob("*.parquet"))]
    )
    quarantine.to_parquet(folder / "quarantine.parquet", index=False)
    valid_lengths = np.array([s["valid"] for s in stats], dtype=np.int64)
    validated = stages.Validated(
        key=key,
        valid_path=str(folder / "valid"),
        quarantine_path=str(folder / "quarantine.parquet"),
        roles=roles.to_dict(),
        n_valid=n_valid,
        n_quarantined=n_quarantined,
    )
    ctx = StageContext(
        client=client,
        config=config,
        folder=folder,
        roles=roles,
        validated=validated,
        names=tuple(f"part-{i:05d}" for i in range(len(plan.parts))),
        valid_offsets=np.concatenate([[0], np.cumsum(valid_lengths)[:-1]]).astype(np.int64),
        has_text=bool(roles.text_column),
    )
    return ctx, stats


def _transform(
    ctx: StageContext, imputed_meta: dict[str, Any], imputer: Any
) -> tuple[stages.Imputed, stages.Embedded | None, list[dict]]:
    """Impute and embed every partition on the workers."""
    client, config, folder = ctx.client, ctx.config, ctx.folder
    # Shipped to every worker once, as an object (no per-partition deserialising from disk).
    imputer_on_workers = client.scatter(imputer, broadcast=True) if imputer is not None else None
    spec = stages.embedder_spec(config) if ctx.has_text else None
    spec_fields = astuple(spec) if spec else None
    cache_path = str(Path(config.workspace) / "embeddings.sqlite")
    model_id = spec.build().model_id if spec else ""
    futures = [
        client.submit(
            _transform_partition,
            i,
            str(folder),
            ctx.roles.to_dict(),
            imputer_on_workers,
            spec_fields,
            cache_path,
            pure=False,
        )
        for i in range(len(ctx.names))
    ]
    out = _gather(client, futures)
    imputed_meta["missing_cells"] = int(sum(o["missing_cells"] for o in out))
    imputed = stages.Imputed(**imputed_meta)
    embedded = None
    if spec:
        _concat_npy(ctx.paths("embeddings", ".npy"), folder / "embeddings.npy")
        n_text = int(sum(o["n_with_text"] for o in out))
        embedded = stages.Embedded(
            key=ctx.validated.key,
            path=str(folder / "embeddings.npy"),
            model_id=model_id,
            n_texts=n_text,
            n_unique=int(sum(o["unique"] for o in out)),
            n_with_text=n_text,
        )
    return imputed, embedded, out


class _Laps:
    """Seconds of the driver's steps, each measured from the end of the one before."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.clock = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self.clock, 3)
        self.clock = now


def _assign(ctx: StageContext, model: Any) -> list[dict]:
    """Assign every partition's rows with the chosen model, on the workers."""
    model_on_workers = ctx.client.scatter(model, broadcast=True)
    futures = [
        ctx.client.submit(
            _assign_partition, i, str(ctx.folder), model_on_workers, ctx.has_text, pure=False
        )
        for i in range(len(ctx.names))
    ]
    return _gather(ctx.client, futures)


def _dask_info(
    ctx: StageContext, plan: Batch, seconds: dict[str, float], worker: dict[str, list[dict]]
) -> dict[str, Any]:
    """Write and return the run's Dask facts (dask.json): cluster, partitions and seconds."""
    per_worker = {
        "validate": [round(s["seconds"], 3) for s in worker["validate"]],
        "impute": [round(o["seconds"]["impute"], 3) for o in worker["transform"]],
    }
    if ctx.has_text:
        per_worker["embed"] = [round(o["seconds"]["embed"], 3) for o in worker["transform"]]
    per_worker["assign"] = [round(a["seconds"], 3) for a in worker["assign"]]
    info = ctx.client.scheduler_info()
    dask_info = {
        "scheduler": info.get("address"),
        "workers": len(info.get("workers", {})),
        "partitions": len(plan.parts),
        "rows_per_partition": [int(n) for n in plan.lengths],
        "seconds": seconds,
        "worker_seconds": per_worker,
    }
    (ctx.folder / "dask.json").write_text(json.dumps(dask_info, indent=2))
    return dask_info


def train_partitioned(
    config: TrainConfig,
    store: StageStore,
    client,
    *,
    partition_bytes: int | None = None,
) -> PartitionedRun:
    """Run ingest to assignment over partitions on the Dask ``client`` (see package docstring).

    ``partition_bytes`` (None: :func:`partition_size` of the input and the cluster's workers)
    sets the size of the CSV partitions.

    Raises
    ------
    InputError, ValidationFailed, ConfigError, NoViableClustering
        As the in-process stages do.
    """
    lap = _Laps()
    files = input_files(config.data)
    plan = _plan(config, client, partition_bytes)
    digest = data_fingerprint(files)
    settings = config.model_dump(mode="json", exclude={"out_dir", "workspace", "registry"})
    key = store.key("partitioned", digest, settings, plan.partition_bytes)
    lap("ingest")
    roles = _roles(config, client, plan)
    lap("roles")

    folder = store.path("partitioned", key)
    ctx, stats = _validate(config, client, plan, roles, folder, key)
    lap("validate")
    imputed_meta, imputer = fit_imputer(ctx)
    lap("impute_fit")
    imputed, embedded, out = _transform(ctx, imputed_meta, imputer)
    lap("transform")

    swept, model = sweep_on_sample(ctx, key, imputer)
    lap("sweep")
    assigned = _assign(ctx, model)
    swept = finish_model(ctx, swept, model)
    lap("assign")

    snapshot = stages.Snapshot(
        source=str(config.data),
        fingerprint=digest,
        path=str(folder / "valid"),
        n_rows=plan.n_rows,
        columns=plan.columns,
    )
    worker = {"validate": stats, "transform": out, "assign": assigned}
    dask_info = _dask_info(ctx, plan, lap.seconds, worker)
    return PartitionedRun(
        snapshot,
        validated=ctx.validated,
        imputed=imputed,
        embedded=embedded,
        swept=swept,
        dask=dask_info,
    )
