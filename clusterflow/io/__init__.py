"""Reading input tables and writing outputs safely.

Input files are opened read-only and checked before pandas sees them, so that a wrong file gives
one clear :class:`~clusterflow.errors.InputError` instead of a parser traceback. Outputs are
written to a temporary name and renamed into place, so a crash never leaves a half-written file
behind.

Modules: ``_checks`` (:func:`file_format` and the checks of a file's path and first bytes),
``_read`` (:func:`read_table`, :func:`read_header`, :func:`read_raw_rows`,
:func:`zero_padded_columns`, :func:`arrow_text_columns`, :func:`short_record` and the
:data:`READ_HOOKS` they call),
``_fingerprint`` (:func:`fingerprint`, the data's identity) and ``_write`` (:func:`atomic_path`
and the atomic JSON, CSV and Parquet writers).
"""

from clusterflow.io._checks import SUPPORTED_SUFFIXES, file_format
from clusterflow.io._fingerprint import fingerprint
from clusterflow.io._read import (
    READ_HOOKS,
    ZERO_SNIFF_ROWS,
    arrow_text_columns,
    read_header,
    read_raw_rows,
    read_table,
    short_record,
    zero_padded_columns,
)
from clusterflow.io._write import atomic_path, write_csv, write_json, write_parquet

__all__ = [
    "READ_HOOKS",
    "SUPPORTED_SUFFIXES",
    "ZERO_SNIFF_ROWS",
    "arrow_text_columns",
    "atomic_path",
    "file_format",
    "fingerprint",
    "read_header",
    "read_raw_rows",
    "short_record",
    "read_table",
    "write_csv",
    "write_json",
    "write_parquet",
    "zero_padded_columns",
]
