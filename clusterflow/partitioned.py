"""The training stages over partitions on a Dask cluster: same rows, same seed, same answer.

Used when a run is given ``--dask-address``. The driver (the flow's process) only plans, fits on
samples and gathers small results; everything that grows with the data runs per partition on the
workers and is written per partition into the workspace (which the workers must share):

1. *plan*: CSV files are cut into byte ranges at record boundaries (quote-aware, so embedded
   newlines are safe); Parquet files (or a folder / glob of them) into row groups. A first pass
   counts the records of every partition, so every row keeps its global 0-based row number.
2. *roles*: the column roles are inferred on a seeded sample of raw rows gathered to the driver
   (every row when the data has at most :data:`FIT_ROWS` rows, so the roles equal the in-process
   run's).
3. *validate* per partition: valid rows to ``valid/part-NNNNN.parquet``, quarantined row numbers
   with their reasons to ``quarantine/``.
4. *fit the imputer* on the seeded sample of valid rows chosen exactly as in-process
   (:func:`clusterflow.pipeline.fit_sample`), gathered to the driver.
5. *transform* per partition: the imputer's ``transform`` and the encoder (loaded once per worker
   process) write ``imputed/`` and ``embeddings/``.
6. *sweep* on the driver: the feature builder and the sweep fit on the same samples as in-process.
7. *assign* per partition: feature building and the chosen model's assignment.

The outputs are then concatenated in partition order into the same stage handles the in-process
run produces (``labels.npy``, ``embeddings.npy`` as a memory map, the valid rows as a Parquet
folder), so registration and the contract outputs are shared code.
"""

from __future__ import annotations

import glob as globmod
import hashlib
import io
import json
import logging
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow import pipeline
from clusterflow.config import ImputeMethod, TrainConfig
from clusterflow.errors import ConfigError, InputError, NoViableClustering, ValidationFailed
from clusterflow.io import file_format, fingerprint
from clusterflow.model import ClusterModel, dump_component
from clusterflow.schema import ColumnRoles, infer_roles, validate_records
from clusterflow.store import StageStore

logger = logging.getLogger(__name__)

PARTITION_BYTES = 64 << 20
"""Target size of one CSV partition (bytes of the file)."""

FIT_ROWS = pipeline.FIT_ROWS
"""Rows of the seeded sample the roles, the imputer and the feature builder are fitted on."""


# ---------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class Partition:
    """One piece of the input: a byte range of a CSV file or row groups of a Parquet file."""

    path: str
    kind: str  # "csv" or "parquet"
    start: int = 0  # CSV: first byte (after the header); Parquet: first row group
    stop: int = -1  # CSV: end byte; Parquet: row group stop
    header: bytes = b""
    sep: str = ","


def input_files(data: str | Path) -> list[Path]:
    """Return the files named by ``data``: one file, a folder of Parquet files, or a glob.

    Raises
    ------
    InputError
        If nothing matches, or a folder / glob holds anything but Parquet files.
    """
    text = str(data)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq"))
        where = f"folder {path}"
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in globmod.glob(text))
        where = f"pattern {text!r}"
    else:
        if not path.exists():
            raise InputError(f"{path}: no such file", hint="check the path")
        return [path]
    if not files:
        raise InputError(f"{where}: no Parquet files found", hint="point at .parquet files")
    odd = [p.name for p in files if file_format(p) != "parquet"]
    if len(files) > 1 and odd:
        raise InputError(
            f"{where}: only Parquet files can be read as one data set, found {odd[:3]}",
            hint="convert the files to Parquet or train on one file",
        )
    return files


def data_fingerprint(files: list[Path]) -> str:
    """Content identity of one file, or of several in order."""
    if len(files) == 1:
        return fingerprint(files[0])
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\x00{fingerprint(path)}\n".encode())
    return digest.hexdigest()


def _record_boundary(handle, target: int, size: int) -> int:
    """First offset >= target that starts a record (the quote count before it is even)."""
    # The parity of quotes before ``target`` needs the prefix; counted in C by bytes.count.
    handle.seek(0)
    quotes = 0
    remaining = target
    while remaining > 0:
        block = handle.read(min(remaining, 16 << 20))
        if not block:
            break
        quotes += block.count(b'"')
        remaining -= len(block)
    pos = target
    while pos < size:
        block = handle.read(1 << 20)
        if not block:
            return size
        start = 0
        while True:
            nl = block.find(b"\n", start)
            if nl < 0:
                quotes += block.count(b'"', start)
                break
            quotes += block.count(b'"', start, nl)
            if quotes % 2 == 0:
                return pos + nl + 1
            start = nl + 1
        pos += len(block)
    return size


def plan_partitions(data: str | Path, *, partition_bytes: int = PARTITION_BYTES) -> list[Partition]:
    """Cut the input into partitions (see the module docstring).

    ``.csv.gz`` and ``.jsonl`` files cannot be split by byte ranges and are one partition each.
    """
    parts: list[Partition] = []
    for path in input_files(data):
        kind = file_format(path)
        if kind == "parquet":
            import pyarrow.parquet as pq

            groups = pq.ParquetFile(path).num_row_groups
            # Row groups are the unit; small groups are taken together up to ~1M rows.
            meta = pq.ParquetFile(path).metadata
            start, rows = 0, 0
            for g in range(groups):
                rows += meta.row_group(g).num_rows
                if rows >= 1_000_000 or g == groups - 1:
                    parts.append(Partition(str(path), "parquet", start, g + 1))
                    start, rows = g + 1, 0
            if groups == 0:
                parts.append(Partition(str(path), "parquet", 0, 0))
            continue
        if kind != "csv" or path.name.lower().endswith(".gz"):
            parts.append(Partition(str(path), "whole"))
            continue
        sep = "\t" if path.name.lower().endswith(".tsv") else ","
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.readline()
            first = handle.tell()
            bounds = [first]
            while bounds[-1] + partition_bytes < size:
                nxt = _record_boundary(handle, bounds[-1] + partition_bytes, size)
                if nxt >= size:
                    break
                bounds.append(nxt)
            bounds.append(size)
        if sep == "," and header.count(b",") == 0 and header.count(b";"):
            sep = ";"
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            parts.append(Partition(str(path), "csv", a, b, header, sep))
    return parts


def read_partition(part: Partition, dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    """Read one partition into a frame (0-based local index), columns as text where asked.

    ``dtypes`` forces the columns the whole-file read sees as text to stay text in every
    partition (a partition holding only digits would otherwise read them as numbers).
    """
    if part.kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(part.path)
        table = pf.read_row_groups(list(range(part.start, part.stop)))
        frame = table.to_pandas()
    elif part.kind == "whole":
        from clusterflow.io import read_table

        frame = read_table(part.path)
    else:
        with open(part.path, "rb") as handle:
            handle.seek(part.start)
            body = handle.read(part.stop - part.start)
        frame = pd.read_csv(
            io.BytesIO(part.header + body),
            sep=part.sep,
            low_memory=False,
            encoding="utf-8",
            dtype={c: str for c, t in (dtypes or {}).items() if t == "text"},
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


def _count_partition(part: Partition) -> tuple[int, dict[str, str]]:
    frame = read_partition(part)
    kinds = {
        c: ("number" if pd.api.types.is_numeric_dtype(frame[c]) else "text") for c in frame.columns
    }
    return len(frame), kinds


# ------------------------------------------------------------------------- worker stages
_WORKER_EMBEDDERS: dict = {}


def _worker_embedder(spec_fields: tuple, cache_path: str):
    """Return the encoder of this worker process, loaded once and kept for every partition."""
    key = (spec_fields, cache_path)
    if key not in _WORKER_EMBEDDERS:
        from clusterflow.model import EmbedderSpec

        _WORKER_EMBEDDERS[key] = EmbedderSpec(*spec_fields).build(cache_path=cache_path)
    return _WORKER_EMBEDDERS[key]


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
    part: Partition,
    index: int,
    offset: int,
    dtypes: dict,
    roles: dict,
    drop_incomplete: bool,
    folder: str,
    source: str,
) -> dict:
    started = time.perf_counter()
    frame = pipeline._sanitise_for_parquet(read_partition(part, dtypes))
    frame.index = pd.RangeIndex(offset, offset + len(frame))
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
    name = f"part-{index:05d}.parquet"
    pipeline._sanitise_for_parquet(valid).to_parquet(Path(folder, "valid", name), index=True)
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


# ------------------------------------------------------------------------------- driver
@dataclass
class PartitionedRun:
    """The handles of a partitioned run (as the in-process stages return) and its Dask facts."""

    snapshot: pipeline.Snapshot
    validated: pipeline.Validated
    imputed: pipeline.Imputed
    embedded: pipeline.Embedded | None
    swept: pipeline.Swept
    dask: dict = field(default_factory=dict)


def _gather(client, futures) -> list:
    return client.gather(futures)


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


def partition_size(total_bytes: int, n_workers: int) -> int:
    """Bytes per CSV partition: at most :data:`PARTITION_BYTES`, at least 4 per worker, >= 1 MiB."""
    return int(max(1 << 20, min(PARTITION_BYTES, total_bytes // max(1, 4 * n_workers))))


def train_partitioned(
    config: TrainConfig,
    store: StageStore,
    client,
    *,
    partition_bytes: int | None = None,
) -> PartitionedRun:
    """Run ingest to assignment over partitions on the Dask ``client`` (see module docstring).

    ``partition_bytes`` (None: :func:`partition_size` of the input and the cluster's workers)
    sets the size of the CSV partitions.

    Raises
    ------
    InputError, ValidationFailed, ConfigError, NoViableClustering
        As the in-process stages do.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(seconds.get(stage, 0.0) + now - clock, 3)
        clock = now

    files = input_files(config.data)
    if partition_bytes is None:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        partition_bytes = partition_size(sum(p.stat().st_size for p in files), n_workers)
    source = files[0].name if len(files) == 1 else str(config.data)
    digest = data_fingerprint(files)
    settings = config.model_dump(mode="json", exclude={"out_dir", "workspace", "registry"})
    key = store.key("partitioned", digest, settings, partition_bytes)
    parts = plan_partitions(config.data, partition_bytes=partition_bytes)
    counted = _gather(client, [client.submit(_count_partition, p, pure=False) for p in parts])
    lengths = np.array([n for n, _ in counted], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n_rows = int(lengths.sum())
    # A column is text if any partition reads it as text (as the whole-file read would).
    dtypes: dict[str, str] = {}
    for _, kinds in counted:
        for column, kind in kinds.items():
            if dtypes.get(column) != "text":
                dtypes[column] = kind
    columns = tuple(counted[0][1].keys()) if counted else ()
    if n_rows == 0:
        raise InputError(
            f"{source}: the header has no data rows below it",
            hint="export the table with its rows",
        )
    lap("ingest")

    # Roles from a seeded sample of raw rows: all rows up to FIT_ROWS, as in-process.
    positions = pipeline.fit_sample(n_rows, FIT_ROWS, config.random_state)
    positions = np.arange(n_rows) if positions is None else positions
    raw = client.gather(
        [
            client.submit(_take_raw, parts[p], dtypes, local, int(offsets[p]), pure=False)
            for p, local in _positions_by_part(positions, offsets)
        ]
    )
    sample = pipeline._sanitise_for_parquet(pd.concat(raw))
    del raw
    roles = infer_roles(
        sample,
        text_column=config.text_column,
        id_column=config.id_column,
        exclude_columns=config.exclude_columns,
        max_categories=config.features.max_categories,
        max_missing=config.features.max_missing,
        source=source,
    )
    texts = sample[roles.text_column].dropna().astype(str) if roles.text_column else None
    if texts is not None and texts.str.strip().eq("").all():
        raise ValidationFailed(
            f"{source}: the text column {roles.text_column!r} is empty in every row",
            hint="choose another --text-column or omit it for tabular data",
        )
    del sample
    lap("roles")

    folder = store.path("partitioned", key)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    for sub in ("valid", "quarantine", "imputed", "embeddings", "labels", "distance"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    drop = config.impute.method == ImputeMethod.drop
    stats = _gather(
        client,
        [
            client.submit(
                _validate_partition,
                part,
                i,
                int(offsets[i]),
                dtypes,
                roles.to_dict(),
                drop,
                str(folder),
                source,
                pure=False,
            )
            for i, part in enumerate(parts)
        ],
    )
    n_valid = sum(s["valid"] for s in stats)
    n_quarantined = sum(s["quarantined"] for s in stats)
    if n_valid + n_quarantined != n_rows:
        raise ValidationFailed(
            f"row accounting broken: {n_rows} read, {n_valid} valid, {n_quarantined} quarantined",
            hint="report this as a bug",
        )
    if n_valid == 0 and drop:
        raise ValidationFailed(
            f"{source}: every row has a gap and impute=drop was asked",
            hint="use an imputer (the default 'auto') instead of dropping rows",
        )
    quarantine = pd.concat(
        [pd.read_parquet(p) for p in sorted((folder / "quarantine").glob("*.parquet"))]
    )
    quarantine.to_parquet(folder / "quarantine.parquet", index=False)
    valid_lengths = np.array([s["valid"] for s in stats], dtype=np.int64)
    valid_offsets = np.concatenate([[0], np.cumsum(valid_lengths)[:-1]]).astype(np.int64)
    names = [f"part-{i:05d}" for i in range(len(parts))]
    valid_paths = [str(folder / "valid" / f"{n}.parquet") for n in names]
    lap("validate")
    validated = pipeline.Validated(
        key=key,
        valid_path=str(folder / "valid"),
        quarantine_path=str(folder / "quarantine.parquet"),
        roles=roles.to_dict(),
        n_valid=n_valid,
        n_quarantined=n_quarantined,
    )

    # The imputer fits on the valid rows the in-process stage would fit on.
    fit_pos = pipeline.fit_sample(n_valid, FIT_ROWS, config.random_state)
    fit_pos = np.arange(n_valid) if fit_pos is None else fit_pos
    imputed_meta, imputer = _fit_imputer(
        client, config, roles, valid_paths, valid_offsets, fit_pos, folder
    )
    # Shipped to every worker once, as an object (no per-partition deserialising from disk).
    imputer_on_workers = client.scatter(imputer, broadcast=True) if imputer is not None else None
    lap("impute_fit")

    spec = pipeline.embedder_spec(config) if roles.text_column else None
    spec_fields = astuple(spec) if spec else None
    cache_path = str(Path(config.workspace) / "embeddings.sqlite")
    model_id = spec.build().model_id if spec else ""
    out = _gather(
        client,
        [
            client.submit(
                _transform_partition,
                i,
                str(folder),
                roles.to_dict(),
                imputer_on_workers,
                spec_fields,
                cache_path,
                pure=False,
            )
            for i in range(len(parts))
        ],
    )
    imputed_meta["missing_cells"] = int(sum(o["missing_cells"] for o in out))
    imputed = pipeline.Imputed(**imputed_meta)
    embedded = None
    emb_paths = [str(folder / "embeddings" / f"{n}.npy") for n in names]
    if spec:
        _concat_npy(emb_paths, folder / "embeddings.npy")
        n_text = int(sum(o["n_with_text"] for o in out))
        embedded = pipeline.Embedded(
            key=key,
            path=str(folder / "embeddings.npy"),
            model_id=model_id,
            n_texts=n_text,
            n_unique=int(sum(o["unique"] for o in out)),
            n_with_text=n_text,
        )
    imputed_paths = [str(folder / "imputed" / f"{n}.parquet") for n in names]
    lap("transform")
    worker_seconds = {
        "validate": [round(s["seconds"], 3) for s in stats],
        "impute": [round(o["seconds"]["impute"], 3) for o in out],
    }
    if spec:
        worker_seconds["embed"] = [round(o["seconds"]["embed"], 3) for o in out]

    swept, model = _sweep_on_sample(
        client,
        config,
        store,
        key,
        validated,
        roles,
        n_valid,
        imputed_paths,
        emb_paths if spec else None,
        valid_offsets,
        folder,
        imputer,
    )
    lap("sweep")
    model_on_workers = client.scatter(model, broadcast=True)
    assigned = _gather(
        client,
        [
            client.submit(
                _assign_partition, i, str(folder), model_on_workers, bool(spec), pure=False
            )
            for i in range(len(parts))
        ],
    )
    worker_seconds["assign"] = [round(a["seconds"], 3) for a in assigned]
    swept = _finish_model(
        config,
        folder,
        names,
        swept,
        model,
        validated,
        roles,
        n_valid,
        client,
        imputed_paths,
        emb_paths if spec else None,
        valid_offsets,
    )
    lap("assign")

    snapshot = pipeline.Snapshot(
        source=str(config.data),
        fingerprint=digest,
        path=str(folder / "valid"),
        n_rows=n_rows,
        columns=columns,
    )
    info = client.scheduler_info()
    dask_info = {
        "scheduler": info.get("address"),
        "workers": len(info.get("workers", {})),
        "partitions": len(parts),
        "rows_per_partition": [int(n) for n in lengths],
        "seconds": seconds,
        "worker_seconds": worker_seconds,
    }
    (folder / "dask.json").write_text(json.dumps(dask_info, indent=2))
    return PartitionedRun(snapshot, validated, imputed, embedded, swept, dask_info)


def _fit_imputer(client, config, roles, valid_paths, valid_offsets, fit_pos, folder) -> tuple:

    method = "auto" if config.impute.method == ImputeMethod.drop else config.impute.method.value
    imputer = None
    scores: list[dict] = []
    profile: dict = {}
    plot_path = None
    if roles.features:
        table = _gather_rows(
            client, valid_paths, valid_offsets, fit_pos, columns=list(roles.features)
        )
        table = table.astype({c: float for c in roles.numeric})
        if int(table.isna().sum().sum()):
            from clusterflow.missingness import plot_missingness, profile_missingness

            prof = profile_missingness(table, random_state=config.random_state)
            profile = prof.to_dict()
            (folder / "missingness.md").write_text(prof.to_markdown())
            plot_missingness(table, folder / "missingness.png")
            plot_path = str(folder / "missingness.png")
        imputer = pipeline.make_imputer(method, roles, config).fit(table)
        method = imputer.method_
        if getattr(imputer, "scores_", None) is not None:
            scores = json.loads(imputer.scores_.to_json(orient="records"))
    return {
        "key": folder.name,
        "path": str(folder / "imputed"),
        "imputer_path": str(folder / "imputer"),
        "imputer_format": dump_component(imputer, folder / "imputer"),
        "method": method,
        "scores": scores,
        "missing_cells": 0,
        "profile": profile,
        "plot_path": plot_path,
    }, imputer


def _sweep_on_sample(
    client,
    config,
    store,
    key,
    validated,
    roles,
    n_valid,
    imputed_paths,
    emb_paths,
    valid_offsets,
    folder,
    imputer,
) -> tuple[pipeline.Swept, ClusterModel]:
    """Fit the feature builder and the sweep exactly as in-process, on gathered samples."""
    if n_valid < config.sweep.k_min:
        raise ConfigError(
            f"{Path(str(config.data)).name}: only {n_valid} valid rows, fewer than "
            f"k_min={config.sweep.k_min}",
            hint="give more rows or lower --k-min",
        )
    # The gate's held-out rows are left out of the fits, exactly as in-process.
    held = pipeline.holdout_rows(validated, config)
    train = np.setdiff1d(np.arange(n_valid), held)
    fit_pos = pipeline.features_fit_rows(train, n_valid, config.random_state)
    fit_pos = np.arange(n_valid) if fit_pos is None else fit_pos
    table = _gather_rows(client, imputed_paths, valid_offsets, fit_pos)
    emb = _gather_rows(client, emb_paths, valid_offsets, fit_pos) if emb_paths else None
    builder = pipeline.make_features(roles, config).fit(table, embeddings=emb)
    clusterer = pipeline.make_sweep(config, n_valid, len(train))
    sample = pipeline.sweep_rows(len(train), config.sweep.fit_rows, config.random_state)
    sweep_pos = train if sample is None else train[sample]
    if np.array_equal(sweep_pos, fit_pos):
        sweep_table, sweep_emb = table, emb  # the builder's rows are the sweep's rows
    else:
        sweep_table = _gather_rows(client, imputed_paths, valid_offsets, sweep_pos)
        sweep_emb = _gather_rows(client, emb_paths, valid_offsets, sweep_pos) if emb_paths else None
    X_sweep = builder.transform(sweep_table, embeddings=sweep_emb)
    clusterer.fit(X_sweep)
    model = ClusterModel(
        roles=roles,
        imputer=imputer,
        features=builder,
        clusterer=clusterer,
        embedder=pipeline.embedder_spec(config) if emb_paths else None,
    )
    results = clusterer.results_.copy()
    chosen = results[results["selected"]].iloc[0].to_dict() if "selected" in results else {}
    metrics = {
        k: (None if pd.isna(chosen[k]) else float(chosen[k]))
        for k in pipeline.SUMMARY_METRICS
        if k in chosen and isinstance(chosen[k], (int, float, np.number))
    }
    results.to_csv(folder / "sweep.csv", index=False)
    np.save(folder / "holdout.npy", held)
    plots = pipeline._plots(
        folder, results, X_sweep, np.asarray(clusterer.predict(X_sweep), dtype=int), config
    )
    return pipeline.Swept(
        key=key,
        model_dir=str(folder / "model"),
        labels_path=str(folder / "labels.npy"),
        results_path=str(folder / "sweep.csv"),
        algorithm=str(clusterer.algorithm_),
        k=int(clusterer.k_),
        metrics=metrics,
        rule=str(getattr(clusterer, "rule_", "")),
        disagreement=str(getattr(clusterer, "disagreement_", "") or ""),
        noise_share=0.0,
        holdout_path=str(folder / "holdout.npy"),
        n_holdout=len(held),
        plots={name: str(folder / Path(p).name) for name, p in plots.items()},
        runner_ups=clusterer.selection_.runner_ups(),
        cards_path=None,
    ), model


def _finish_model(
    config,
    folder,
    names,
    swept,
    model,
    validated,
    roles,
    n_valid,
    client,
    imputed_paths,
    emb_paths,
    valid_offsets,
) -> pipeline.Swept:
    """Concatenate labels, set the novelty threshold, keep the drift reference and the cards."""
    from dataclasses import replace

    from clusterflow.model import NOVELTY_QUANTILE

    labels = np.concatenate([np.load(folder / "labels" / f"{n}.npy") for n in names])
    distance = np.concatenate([np.load(folder / "distance" / f"{n}.npy") for n in names])
    if len(labels) != n_valid:
        raise ValidationFailed(
            f"row accounting broken: {n_valid} valid rows, {len(labels)} assigned",
            hint="report this as a bug",
        )
    if not (labels >= 0).any():
        raise NoViableClustering(
            "the chosen clustering put every row in noise",
            hint="use --noise assign or other algorithms",
        )
    model.novelty_threshold = float(np.quantile(distance, NOVELTY_QUANTILE)) * 1.0001
    model.save(folder / "model")
    np.save(folder / "labels.npy", labels)
    np.save(folder / "distance.npy", distance)
    # The drift reference: the same seeded rows as in-process, gathered from the partitions.
    rng = np.random.default_rng(config.random_state)
    pick = np.sort(rng.choice(n_valid, size=min(n_valid, pipeline.REFERENCE_ROWS), replace=False))
    table = _gather_rows(client, imputed_paths, valid_offsets, pick)
    emb = _gather_rows(client, emb_paths, valid_offsets, pick) if emb_paths else None
    ref = table.reset_index(drop=True).copy()
    ref["__cluster"] = labels[pick]
    ref["__distance"] = distance[pick]
    ref["__novel"] = distance[pick] > model.novelty_threshold
    ref.to_parquet(folder / "model" / "reference.parquet", index=False)
    if emb is not None:
        np.save(folder / "model" / "reference_embeddings.npy", emb)
    cards_path = None
    try:
        from clusterflow.cards import cards_markdown, cluster_cards

        X = model.features.transform(table, embeddings=emb)
        texts = None
        if roles.text_column:
            valid_ref = _gather_rows(
                client,
                [str(Path(validated.valid_path) / f"{n}.parquet") for n in names],
                valid_offsets,
                pick,
                columns=[roles.text_column],
            )
            texts = valid_ref[roles.text_column].fillna("").astype(str).tolist()
        cards = cluster_cards(
            table.reset_index(drop=True),
            labels[pick],
            texts=texts,
            features=X,
            centers=getattr(model.clusterer, "cluster_centers_", None),
        )
        (folder / "cards.md").write_text(cards_markdown(cards))
        (folder / "cards.json").write_text(json.dumps(cards, indent=2, default=str))
        cards_path = str(folder / "cards.md")
    except (ValueError, KeyError) as err:  # cards are a summary: never fail a run
        logger.warning("cluster cards on the reference sample failed: %s", err)
    metrics = dict(swept.metrics)
    noise_share = float(np.mean(labels < 0))
    metrics["noise_share"] = noise_share
    return replace(swept, metrics=metrics, noise_share=noise_share, cards_path=cards_path)
