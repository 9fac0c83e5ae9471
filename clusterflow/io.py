"""Reading input tables and writing outputs safely.

Input files are opened read-only and checked before pandas sees them, so that a wrong file gives
one clear :class:`~clusterflow.errors.InputError` instead of a parser traceback. Outputs are
written to a temporary name and renamed into place, so a crash never leaves a half-written file
behind.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

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

READ_HOOKS: list[Callable[[Path], None]] = []
"""Functions called with the input path just before :func:`read_table` reads it.

A hook may audit reads, or inject a fault: an ``OSError`` it raises propagates unchanged, as a
failing network filesystem would, so the ingest task's retries can be tested against a real
flaky source. Hooks must not raise anything else.
"""


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


def fingerprint(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 of the file's bytes: the identity of the data, whatever its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path and the working directory")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file", hint="name one data file inside it")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable", hint="check the file's permissions")
    if path.stat().st_size == 0:
        raise InputError(
            f"{path}: the file is empty", hint="export the table again with a header row"
        )


def _open_text_head(path: Path) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except _CORRUPT as err:
        raise InputError(
            f"{path}: cannot read the file, it is damaged ({err})",
            hint="check it is complete and not corrupt (gzip -t FILE)",
        ) from err


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
    sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
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


def _read_csv(path: Path) -> pd.DataFrame:
    sep, _ = _csv_header(path)
    try:
        frame = pd.read_csv(path, sep=sep, low_memory=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start})",
            hint="re-export the file as UTF-8",
        ) from err
    except pd.errors.ParserError as err:
        raise InputError(
            f"{path}: malformed CSV ({' '.join(str(err).split())})",
            hint="check quoting and that every line has as many fields as the header",
        ) from err
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{path}: no columns to read", hint="the file needs a header row") from err
    except _CORRUPT as err:
        raise InputError(
            f"{path}: cannot read the file, it is damaged ({err})",
            hint="check it is complete and not corrupt (gzip -t FILE)",
        ) from err
    return frame


def _guess_delimiter(line: str) -> str | None:
    counts = {d: line.count(d) for d in (";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _read_jsonl(path: Path) -> pd.DataFrame:
    head = _open_text_head(path)
    _check_text(path, head)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        records = _parse_jsonl(path, opener)
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start})",
            hint="re-export the file as UTF-8",
        ) from err
    except _CORRUPT as err:
        raise InputError(
            f"{path}: cannot read the file, it is damaged ({err})",
            hint="check it is complete and not corrupt (gzip -t FILE)",
        ) from err
    if not records:
        raise InputError(f"{path}: no records", hint="the file holds no JSON object")
    return pd.DataFrame.from_records(records)


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


def _parse_jsonl(path: Path, opener: Callable) -> list[dict]:
    records = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            records.append(_json_record(path, lineno, line))
    return records


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise _unreadable_parquet(path, err) from err
    supported = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_boolean,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_dictionary,
        pa.types.is_timestamp,
        pa.types.is_date,
        pa.types.is_decimal,
        pa.types.is_null,
    )
    for field in table.schema:
        if not any(check(field.type) for check in supported):
            raise InputError(
                f"{path}: column {field.name!r} has the unsupported Parquet type {field.type}",
                hint="flatten or drop nested/binary columns, or pass it through --exclude-columns "
                "after converting it to text",
            )
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table.to_pandas()


def read_header(path: str | Path) -> list[str]:
    """Return the column names after the cheap checks of :func:`read_table` (no full read).

    The command line calls it before starting a flow, so that a wrong path, format, encoding,
    delimiter or header fails at once with one clear line. A JSON Lines file is judged by its first
    record only; the full read still checks every line.

    Raises
    ------
    InputError
        As :func:`read_table` does for the problems visible in the file's first bytes.
    """
    path = Path(path)
    _check_path(path)
    kind = file_format(path)
    if kind == "csv":
        return _csv_header(path)[1]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return [str(name) for name in pq.read_schema(path).names]
        except (pa.ArrowInvalid, OSError) as err:
            raise _unreadable_parquet(path, err) from err
    head = _open_text_head(path)
    _check_text(path, head)
    lines = head.decode("utf-8", errors="ignore").splitlines()
    if len(head) == _SNIFF_BYTES:
        lines = lines[:-1]  # the last sniffed line may be cut short
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            return [str(k) for k in _json_record(path, lineno, line)]
    return []


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one input file into a frame with a 0-based ``RangeIndex`` (the row number).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` (``.csv.gz``, ``.tsv``), ``.parquet`` or ``.jsonl`` file.

    Returns
    -------
    pandas.DataFrame
        The rows as read, column types inferred by pandas/pyarrow.

    Raises
    ------
    InputError
        When the file is missing, a directory, empty, binary, not UTF-8, has a wrong delimiter,
        duplicated column names, a broken JSON line, an unsupported Parquet type, or no data rows.
    """
    path = Path(path)
    _check_path(path)
    kind = file_format(path)
    for hook in READ_HOOKS:
        hook(path)
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[kind]
    frame = reader(path)
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InputError(f"{path}: duplicated column name(s) {dupes}", hint="rename them")
    if len(frame) == 0:
        raise InputError(
            f"{path}: the header has no data rows below it", hint="export the table with its rows"
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


def read_raw_rows(path: str | Path, rows: list[int]) -> pd.DataFrame:
    """Return the given rows exactly as written in a CSV (all strings), others as read.

    Quarantined rows are reported unchanged: for CSV files this re-reads the file as text so that
    ``3`` is not shown as ``3.0`` and blanks stay blank.
    """
    path = Path(path)
    if path.is_dir() or any(ch in str(path) for ch in "*?["):
        # A folder or glob of Parquet files (a partitioned run): rows are numbered across them.
        from clusterflow.partitioned import input_files

        raw = pd.concat([read_table(p) for p in input_files(path)], ignore_index=True)
        return raw.iloc[rows]
    if file_format(path) == "csv":
        sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
        raw = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    else:
        raw = read_table(path)
    return raw.iloc[rows]


def _umask() -> int:
    """Return the process umask without changing it (Linux reports it in /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere reading it means setting it: set it straight back
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` that is renamed onto it only on success.

    The file gets the permissions an ordinary ``open(target, "w")`` would give it (0644 under
    the usual umask 022): ``mkstemp`` creates it 0600, which would make a report readable by its
    owner only while the HTML written beside it is not.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(data: dict, target: str | Path) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return Path(target)


def write_csv(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write ``frame`` as CSV without its index, atomically."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(target)


def write_parquet(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write ``frame`` as Parquet, atomically."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=True)
    return Path(target)
