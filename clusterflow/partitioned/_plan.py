"""Cutting the input into partitions and reading one (step 1 of the package docstring).

CSV files are cut into byte ranges at record boundaries, Parquet files into row groups.
"""

from __future__ import annotations

import functools
import glob as globmod
import hashlib
import io
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.errors import InputError
from clusterflow.io import (
    arrow_text_columns,
    file_format,
    fingerprint,
    short_record,
    zero_padded_columns,
)

PARTITION_BYTES = 64 << 20
"""Target size of one CSV partition (bytes of the file)."""

GROWTH_PER_CSV_BYTE = 13
"""Peak memory a worker needs per byte of the CSV partition it validates (read, checks, Parquet).

Measured by ``benchmarks/partition_memory.py``: 6.7x the partition's bytes at 64-128 MiB, 13x at
8-16 MiB (fixed allocations weigh more on small partitions); the largest is used."""

MEMORY_TARGET = 0.6
"""Share of a worker's memory limit one partition may fill (dask's default ``target``, where a
worker starts spilling to disk; it pauses at 0.8 and is restarted at 0.95)."""


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

    ``dtypes`` forces the columns a CSV's whole-file read sees as text (``"text"``) to stay text
    in every CSV partition (a partition holding only digits would otherwise read them as
    numbers), and the columns read as text on purpose (``"id"``, the id column: see
    :func:`plan_batch`) to be text in every format, as :func:`clusterflow.io.read_table` reads
    them. Parquet and JSON Lines keep their own types otherwise, as the whole-file read does.
    """
    ids = {c for c, t in (dtypes or {}).items() if t == "id"}
    text = ids | {c for c, t in (dtypes or {}).items() if t == "text"}
    if part.kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(part.path)
        table = pf.read_row_groups(list(range(part.start, part.stop)))
        frame = arrow_text_columns(table, ids).to_pandas()
    elif part.kind == "whole":
        from clusterflow.io import read_table

        frame = read_table(part.path, text_columns=ids)
    else:
        with open(part.path, "rb") as handle:
            handle.seek(part.start)
            body = handle.read(part.stop - part.start)
        frame = pd.read_csv(
            io.BytesIO(part.header + body),
            sep=part.sep,
            low_memory=False,
            encoding="utf-8",
            dtype=dict.fromkeys(text, str),
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


def _count_partition(part: Partition) -> tuple[int, dict[str, str]]:
    frame = read_partition(part)
    if part.kind == "csv" and frame.shape[1] > 1 and frame.iloc[:, -1].isna().any():
        _check_short_lines(part, frame.shape[1])
    kinds = {
        c: ("number" if pd.api.types.is_numeric_dtype(frame[c]) else "text") for c in frame.columns
    }
    return len(frame), kinds


def _check_short_lines(part: Partition, width: int) -> None:
    """Refuse a CSV partition with a line shorter than the header, as the whole-file read does.

    Raises
    ------
    InputError
        Quoting the line (its number in the file is not known to one partition).
    """
    with open(part.path, "rb") as handle:
        handle.seek(part.start)
        body = handle.read(part.stop - part.start)
    text = (part.header + body).decode("utf-8-sig", errors="replace")
    found = short_record(io.StringIO(text, newline=""), part.sep, width)
    if found is not None:
        _, fields, line = found
        raise InputError(
            f"{Path(part.path).name}: malformed CSV (a line with {fields} field"
            f"{'' if fields == 1 else 's'}, the header {width}: {line[:60]!r})",
            hint="check quoting and that every line has as many fields as the header",
        )


def partition_size(total_bytes: int, n_workers: int, headroom: int | None = None) -> int:
    """Bytes per CSV partition: at most :data:`PARTITION_BYTES`, at least 4 per worker, >= 1 MiB.

    Parameters
    ----------
    total_bytes : int
        Size of the input.
    n_workers : int
        Workers of the cluster.
    headroom : int, optional
        Bytes the tightest worker may still fill (see :func:`worker_headroom`); a partition then
        holds at most ``headroom / GROWTH_PER_CSV_BYTE`` bytes, so that validating it stays under
        the worker's limit whatever the size of the whole file. None: no memory limit.
    """
    size = min(PARTITION_BYTES, total_bytes // max(1, 4 * n_workers))
    if headroom is not None:
        size = min(size, headroom // GROWTH_PER_CSV_BYTE)
    return int(max(1 << 20, size))


def worker_headroom(workers: dict) -> int | None:
    """Return the bytes the tightest worker may still fill before it spills (None: no limit).

    ``workers`` is ``Client.scheduler_info()["workers"]``: per worker its ``memory_limit`` (0 for
    none) and ``metrics["memory"]``, what its process holds now (imports, a loaded encoder).
    """
    room = [
        int(MEMORY_TARGET * info["memory_limit"] - info.get("metrics", {}).get("memory", 0))
        for info in workers.values()
        if info.get("memory_limit")
    ]
    return max(0, min(room)) if room else None


@dataclass(frozen=True)
class PartitionJob:
    """One partition as a worker receives it: the piece, its number and its first row's number."""

    part: Partition
    index: int
    """Position of the partition in the input (names its files: ``part-NNNNN``)."""
    offset: int
    """Row number, in the whole input, of the partition's first row."""
    dtypes: dict[str, str]
    """The column kinds of the whole input (see :func:`read_partition`)."""

    @property
    def name(self) -> str:
        """``part-NNNNN``: the stem of the files the partition's steps write."""
        return f"part-{self.index:05d}"

    def read(self) -> pd.DataFrame:
        """Read the partition, indexed by the row numbers of its rows in the whole input."""
        frame = read_partition(self.part, self.dtypes)
        frame.index = pd.RangeIndex(self.offset, self.offset + len(frame))
        return frame


@dataclass(frozen=True)
class Batch:
    """An input cut for the cluster: partitions, their rows and offsets, the column kinds."""

    parts: list[Partition]
    lengths: np.ndarray
    offsets: np.ndarray
    dtypes: dict[str, str]
    columns: tuple[str, ...]
    workers: int
    partition_bytes: int
    source: str
    """What messages call the input: the file's name, or the folder or glob as given."""

    @property
    def n_rows(self) -> int:
        return int(self.lengths.sum())

    def jobs(self) -> list[PartitionJob]:
        """Return every partition as its worker receives it, in order."""
        return [
            PartitionJob(part, index, int(self.offsets[index]), self.dtypes)
            for index, part in enumerate(self.parts)
        ]


def plan_batch(
    data: str | Path,
    client: Any,
    partition_bytes: int | None = None,
    *,
    text_columns: Collection[str] = (),
) -> Batch:
    """Cut ``data`` for ``client``'s workers and count every partition's rows and column kinds.

    Used by training, scoring and monitoring alike.

    The partitions are sized as for training (:func:`partition_size` of the input, the workers
    and their memory, unless ``partition_bytes`` is given); a column any partition reads as text
    is text in every partition, as the whole-file read would see it. ``text_columns`` (the id
    column) are text in every partition whatever their values, as
    :func:`clusterflow.io.read_table` reads them in process.
    """
    from clusterflow.partitioned._workers import _gather

    workers = client.scheduler_info().get("workers", {})
    files = input_files(data)
    if partition_bytes is None:
        total = sum(p.stat().st_size for p in files)
        partition_bytes = partition_size(total, max(1, len(workers)), worker_headroom(workers))
    parts = plan_partitions(data, partition_bytes=partition_bytes)
    counted = _gather(client, [client.submit(_count_partition, p, pure=False) for p in parts])
    lengths = np.array([n for n, _ in counted], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    dtypes: dict[str, str] = {}
    for _, kinds in counted:
        for column, kind in kinds.items():
            if dtypes.get(column) != "text":
                dtypes[column] = kind  # a column any CSV partition reads as text is text
    if parts and parts[0].kind == "csv":
        # The columns the whole-file read takes as zero-padded text, from the same first rows.
        first = parts[0]
        read = functools.partial(pd.read_csv, first.path, sep=first.sep, encoding="utf-8")
        dtypes.update(dict.fromkeys(zero_padded_columns(read), "text"))
    columns = tuple(counted[0][1].keys()) if counted else ()
    dtypes.update(dict.fromkeys([c for c in text_columns if c in columns], "id"))
    source = files[0].name if len(files) == 1 else str(data)
    return Batch(parts, lengths, offsets, dtypes, columns, len(workers), partition_bytes, source)
