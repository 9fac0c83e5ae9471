"""Reading input tables: CSV, JSON Lines and Parquet into a frame numbered by row."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from clusterflow.errors import InputError
from clusterflow.io._checks import (
    _CORRUPT,
    _SNIFF_BYTES,
    _check_path,
    _check_text,
    _csv_delimiter,
    _csv_header,
    _damaged,
    _json_record,
    _not_utf8,
    _open_text_head,
    _opener,
    _unreadable_parquet,
    file_format,
)

if TYPE_CHECKING:
    import pyarrow as pa

READ_HOOKS: list[Callable[[Path], None]] = []
"""Functions called with the input path just before :func:`read_table` reads it.

A hook may audit reads, or inject a fault: an ``OSError`` it raises propagates unchanged, as a
failing network filesystem would, so the ingest task's retries can be tested against a real
flaky source. Hooks must not raise anything else. Add and remove hooks on this list
(``READ_HOOKS.append(hook)``; ``clusterflow.io.READ_HOOKS`` is the same list): binding a new list
to the name elsewhere is not seen by :func:`read_table`.
"""


def _read_csv(path: Path, text_columns: Collection[str] = ()) -> pd.DataFrame:
    sep, _ = _csv_header(path)
    read = partial(pd.read_csv, path, sep=sep, encoding="utf-8")
    try:
        padded = zero_padded_columns(read)
        # read_csv ignores the names the file lacks
        frame = read(low_memory=False, dtype=dict.fromkeys([*padded, *text_columns], str))
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from err
    except pd.errors.ParserError as err:
        raise InputError(
            f"{path}: malformed CSV ({' '.join(str(err).split())})",
            hint="check quoting and that every line has as many fields as the header",
        ) from err
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{path}: no columns to read", hint="the file needs a header row") from err
    except _CORRUPT as err:
        raise _damaged(path, err) from err
    if frame.shape[1] > 1 and frame.iloc[:, -1].isna().any():
        # pandas pads a line with too few fields with gaps (too many is its ParserError)
        short = _first_short_record(path, sep, frame.shape[1])
        if short is not None:
            line, fields = short
            raise InputError(
                f"{path}: malformed CSV (line {line} has {fields} field"
                f"{'' if fields == 1 else 's'}, the header {frame.shape[1]})",
                hint="check quoting and that every line has as many fields as the header",
            )
    return frame


def _first_short_record(path: Path, sep: str, width: int) -> tuple[int, int] | None:
    """Return (line, fields) of the first record with fewer fields than the header, or None.

    Read only when the last column has gaps (see :func:`short_record`).
    """
    with _opener(path)(path, "rt", encoding="utf-8-sig", newline="") as handle:
        found = short_record(handle, sep, width)
    return None if found is None else found[:2]


def short_record(handle: Iterable[str], sep: str, width: int) -> tuple[int, int, str] | None:
    """Return (line, fields, text) of the first CSV record with fewer fields than the header.

    ``handle`` yields the lines of a CSV file from its header on. Read with the csv module (the
    dialect pandas reads by default: double quotes, doubled to escape). As pandas does, lines of
    blanks are skipped and a header ending in an empty name (``a,b,``) may have rows one field
    short. Anything the module cannot read that pandas did is left to pandas (None).
    """
    import csv

    previous = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # texts of up to a million characters are valid
    try:
        reader = csv.reader(handle, delimiter=sep)
        header = next(reader, [])
        while header and not header[-1].strip():
            header.pop()  # an unnamed trailing column: rows may leave it out
        width = min(width, len(header)) if header else width
        for record in reader:
            if len(record) < width and "".join(record).strip():
                return reader.line_num, len(record), sep.join(record)
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(previous)
    return None


ZERO_SNIFF_ROWS = 10_000
"""Rows of a CSV file whose text decides which integer columns are zero-padded."""


def zero_padded_columns(read: Callable[..., pd.DataFrame]) -> list[str]:
    """Return the integer columns written with leading zeros (ids, postcodes), to read as text.

    ``read(**options)`` reads the CSV with ``pandas.read_csv`` options; the first
    :data:`ZERO_SNIFF_ROWS` rows are read as text, and a column whose values there are all
    integers, one at least with a leading zero (``007``, ``-01``), is zero-padded: read as
    numbers, ``00042`` would come back as 42. The partitioned read takes the same columns from
    the same rows, so both reads agree.
    """
    head = read(nrows=ZERO_SNIFF_ROWS, dtype=str)
    padded = []
    for column in head.columns:
        values = head[column].dropna().str.strip()
        values = values[values != ""]
        if len(values) and values.str.fullmatch(r"[+-]?\d+").all():
            if values.str.match(r"[+-]?0\d").any():
                padded.append(str(column))
    return padded


def _read_jsonl(path: Path, text_columns: Collection[str] = ()) -> pd.DataFrame:
    head = _open_text_head(path)
    _check_text(path, head)
    try:
        records = _parse_jsonl(path, _opener(path))
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from err
    except _CORRUPT as err:
        raise _damaged(path, err) from err
    if not records:
        raise InputError(f"{path}: no records", hint="the file holds no JSON object")
    if text_columns:
        # Before the frame is built: a column of integers with a null would become float64.
        for record in records:
            for column in text_columns:
                if column in record:
                    record[column] = _json_text(record[column])
    return pd.DataFrame.from_records(records)


def _json_text(value: object) -> str | None:
    """Return a JSON value as text: a string as it is, anything else as JSON writes it.

    ``558672533168590848`` stays those digits; a null (or a NaN) stays missing.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _parse_jsonl(path: Path, opener: Callable) -> list[dict]:
    records = []
    with opener(path, "rt", encoding="utf-8-sig") as fh:  # a byte-order mark is not JSON
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            records.append(_json_record(path, lineno, line))
    return records


def _read_parquet(path: Path, text_columns: Collection[str] = ()) -> pd.DataFrame:
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
    table = arrow_text_columns(table, text_columns)
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table.to_pandas()


def arrow_text_columns(table: pa.Table, text_columns: Collection[str]) -> pa.Table:
    """Return ``table`` with the named columns cast to Arrow strings (absent names are ignored).

    Cast before ``to_pandas``: an Int64 column with a null would become float64 there, and an id
    above 2**53 would lose digits.
    """
    import pyarrow as pa

    cast = set()
    for i, field in enumerate(table.schema):
        if field.name in text_columns and not pa.types.is_string(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
            cast.add(field.name)
    metadata = table.schema.metadata or {}
    if cast and b"pandas" in metadata:
        # A file written by pandas records each column's dtype (Int64), which to_pandas would
        # restore, failing on the strings: record them as text instead.
        pandas_meta = json.loads(metadata[b"pandas"])
        for column in pandas_meta.get("columns", []):
            if column.get("field_name") in cast:
                column.update(pandas_type="unicode", numpy_type="object", metadata=None)
        metadata = {**metadata, b"pandas": json.dumps(pandas_meta).encode()}
        table = table.replace_schema_metadata(metadata)
    return table


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
    lines = head.decode("utf-8-sig", errors="ignore").splitlines()
    if len(head) == _SNIFF_BYTES:
        lines = lines[:-1]  # the last sniffed line may be cut short
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            return [str(k) for k in _json_record(path, lineno, line)]
    return []


def read_table(path: str | Path, *, text_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read one input file into a frame with a 0-based ``RangeIndex`` (the row number).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` (``.csv.gz``, ``.tsv``), ``.parquet`` or ``.jsonl`` file.
    text_columns : collection of str, optional
        Columns read as text, exactly as written, whatever their values (an id column: integers
        with a blank would otherwise come back as floats, ``1000.0``, and those above 2**53
        with other digits). Missing values stay missing; names the file lacks are ignored.

    Returns
    -------
    pandas.DataFrame
        The rows as read: ``text_columns`` and zero-padded integer columns (see
        :func:`zero_padded_columns`) as text, the other column types inferred by
        pandas/pyarrow.

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
    frame = reader(path, frozenset(text_columns))
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InputError(f"{path}: duplicated column name(s) {dupes}", hint="rename them")
    if len(frame) == 0:
        raise InputError(
            f"{path}: the header has no data rows below it", hint="export the table with its rows"
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


def read_raw_rows(
    path: str | Path, rows: list[int], *, text_columns: Collection[str] = ()
) -> pd.DataFrame:
    """Return the given rows exactly as written in a CSV (all strings), others as read.

    Quarantined rows are reported unchanged: for CSV files this re-reads the file as text so that
    ``3`` is not shown as ``3.0`` and blanks stay blank. Other formats are read by
    :func:`read_table` with ``text_columns`` (the id column: an Int64 id with a null keeps its
    digits there too).
    """
    path = Path(path)
    if path.is_dir() or any(ch in str(path) for ch in "*?["):
        # A folder or glob of Parquet files (a partitioned run): rows are numbered across them.
        from clusterflow.partitioned import input_files

        raw = pd.concat(
            [read_table(p, text_columns=text_columns) for p in input_files(path)],
            ignore_index=True,
        )
        return raw.iloc[rows]
    if file_format(path) == "csv":
        # In chunks, keeping only the asked rows: the text of a large file is never held whole.
        wanted = pd.Index(sorted(set(rows)))
        sep = _csv_delimiter(path)
        chunks = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            chunksize=_RAW_CHUNK_ROWS,
        )
        kept = [chunk[chunk.index.isin(wanted)] for chunk in chunks]
        header = pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8")
        raw = pd.concat(kept) if kept else header.astype(str)
        return raw.loc[rows]
    return read_table(path, text_columns=text_columns).iloc[rows]


_RAW_CHUNK_ROWS = 100_000
