"""The checks of an input file before pandas sees it: its name, its presence, its first bytes.

Each problem is one :class:`~clusterflow.errors.InputError` that names the file and says how to fix
it, instead of a parser traceback.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from clusterflow.errors import InputError

SUPPORTED_SUFFIXES = (
    ".csv",
    ".csv.gz",
    ".tsv",
    ".parquet",
    ".pq",
    ".jsonl",
    ".ndjson",
    ".jsonl.gz",
)
_SNIFF_BYTES = 64 * 1024

_CORRUPT = (gzip.BadGzipFile, EOFError, zlib.error)
"""A damaged compressed file: a user error. Any other OSError is treated as transient I/O."""


def file_format(path: Path) -> str:
    """Return ``csv``, ``parquet`` or ``jsonl`` from the file name.

    Raises
    ------
    InputError
        If the suffix is not one clusterflow reads.
    """
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    raise InputError(
        f"{path}: unsupported file type {''.join(path.suffixes) or '(no suffix)'}",
        hint=f"give a file ending in one of {', '.join(SUPPORTED_SUFFIXES)}",
    )


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path and the working directory")
    if path.is_dir():
        raise InputError(
            f"{path}: is a directory, not a file",
            hint="name one data file inside it (a folder of Parquet files is read with "
            "--dask-address)",
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable", hint="check the file's permissions")
    if path.stat().st_size == 0:
        raise InputError(
            f"{path}: the file is empty", hint="export the table again with a header row"
        )


def _opener(path: Path) -> Callable:
    """Return :func:`gzip.open` for a ``.gz`` file, else the built-in :func:`open`."""
    return gzip.open if path.name.lower().endswith(".gz") else open


def _csv_delimiter(path: Path) -> str:
    """Return the delimiter the file name implies: a tab for ``.tsv``, else a comma."""
    return "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","


def _damaged(path: Path, err: Exception) -> InputError:
    """Return the error for a damaged compressed file (one of :data:`_CORRUPT`)."""
    return InputError(
        f"{path}: cannot read the file, it is damaged ({err})",
        hint="check it is complete and not corrupt (gzip -t FILE)",
    )


def _not_utf8(path: Path, err: UnicodeDecodeError) -> InputError:
    """Return the error for a byte that is not UTF-8, found while reading the whole file."""
    return InputError(
        f"{path}: not UTF-8 text ({err.reason} at byte {err.start})",
        hint="re-export the file as UTF-8",
    )


def _open_text_head(path: Path) -> bytes:
    opener = _opener(path)
    try:
        with opener(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except _CORRUPT as err:
        raise _damaged(path, err) from err


def _check_text(path: Path, head: bytes) -> None:
    if b"\x00" in head:
        raise InputError(
            f"{path}: looks like a binary file, not text",
            hint="give a CSV or JSON Lines text file, or a .parquet file",
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character may be cut at the end of the sniffed block.
        if err.start < len(head) - 4:
            raise InputError(
                f"{path}: not UTF-8 text (bad byte 0x{head[err.start]:02x} at offset {err.start})",
                hint="re-export the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            ) from err


def _csv_header(path: Path) -> tuple[str, list[str]]:
    """Check the start of a CSV file and return its delimiter and column names."""
    head = _open_text_head(path)
    _check_text(path, head)
    text = head.decode("utf-8", errors="ignore")
    first_line = text.splitlines()[0] if text.strip() else ""
    sep = _csv_delimiter(path)
    header = next(csv.reader(io.StringIO(first_line), delimiter=sep), [])
    if not any(h.strip() for h in header):
        raise InputError(f"{path}: the first line is empty", hint="put the column names on line 1")
    if len(header) == 1:
        guessed = _guess_delimiter(first_line)
        if guessed:
            raise InputError(
                f"{path}: one column found, but the header contains {guessed!r}: the file seems "
                f"to use {guessed!r} as its delimiter",
                hint="save it comma-separated (clusterflow reads standard CSV)",
            )
    dupes = sorted(name for name, n in Counter(h.strip() for h in header).items() if n > 1)
    if dupes:
        raise InputError(
            f"{path}: duplicated column name(s) {', '.join(repr(d) for d in dupes)} in the header",
            hint="rename the columns so that each name appears once",
        )
    if header:
        header[0] = header[0].removeprefix("\ufeff")  # pandas drops a UTF-8 byte-order mark too
    return sep, header


def _guess_delimiter(line: str) -> str | None:
    counts = {d: line.count(d) for d in (";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _json_record(path: Path, lineno: int, line: str) -> dict:
    """Parse one JSON Lines record, naming the file and line when it is not an object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: line {lineno} is not valid JSON ({err.msg} at column {err.colno})",
            hint="fix or remove that line; each line must hold one JSON object",
        ) from err
    if not isinstance(record, dict):
        raise InputError(
            f"{path}: line {lineno} holds a JSON {type(record).__name__}, not an object",
            hint='each line must be one object such as {"col": value}',
        )
    return record


def _unreadable_parquet(path: Path, err: Exception) -> InputError:
    return InputError(
        f"{path}: not a readable Parquet file ({' '.join(str(err).split())})",
        hint="check the file is complete and really Parquet",
    )
