"""A catalogue of bad inputs, generated into a folder at test time (no binary fixtures committed).

Each :class:`BadInput` knows how to write its file, which extra ``clusterflow train`` options the
case needs, and what a user should expect: an error (its type and the words the one line on stderr
must contain: the file, the column or row, what is wrong) or a quarantine (the run succeeds and the
bad rows end in quarantine.csv with a reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clusterflow.errors import ConfigError, InputError, ValidationFailed

#: Options that keep a successful run cheap (one algorithm, a tiny k range).
FAST = ("--algorithms", "kmeans", "--k-max", "3", "--impute", "mean")


def good_frame(n: int = 24, seed: int = 0) -> pd.DataFrame:
    """A small clean table: two numeric columns with two obvious groups, and a category."""
    rng = np.random.default_rng(seed)
    half = n // 2
    return pd.DataFrame(
        {
            "x": np.r_[rng.normal(0, 0.3, half), rng.normal(5, 0.3, n - half)].round(3),
            "y": np.r_[rng.normal(0, 0.3, half), rng.normal(5, 0.3, n - half)].round(3),
            "kind": ["a", "b"] * half + ["a"] * (n - 2 * half),
        }
    )


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@dataclass(frozen=True)
class BadInput:
    """One kind of bad input and what the user should see.

    Attributes
    ----------
    name : str
        Short id of the kind (the pytest id).
    filename : str
        File name to write (its suffix selects the reader).
    write : callable
        ``write(path)`` creates the file (or leaves it absent / makes a folder).
    args : tuple of str
        Extra options for ``clusterflow train``.
    error : type or None
        The typed error expected, or None when the run must succeed with a quarantine.
    words : tuple of str
        Words the stderr line must contain besides the file name (column names, row numbers...).
    quarantined : dict
        For quarantine cases: row number -> words its reason must contain.
    """

    name: str
    filename: str
    write: Callable[[Path], None]
    args: tuple[str, ...] = ()
    error: type | None = None
    words: tuple[str, ...] = ()
    quarantined: dict[int, str] = field(default_factory=dict)


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _frame_csv(make: Callable[[], pd.DataFrame]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(_csv(make()))


def _with(column: str, row: int, value) -> Callable[[], pd.DataFrame]:
    def make() -> pd.DataFrame:
        frame = good_frame().astype({column: object})
        frame.loc[row, column] = value
        return frame

    return make


def _parquet_nested(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {"x": [1.0, 2.0, 3.0], "tags": pa.array([[1, 2], [3], []], type=pa.list_(pa.int64()))}
    )
    pq.write_table(table, path)


def _parquet_truncated(path: Path) -> None:
    good_frame().to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.csv").write_bytes(_csv(good_frame()))


def _huge_text(path: Path) -> None:
    frame = good_frame()
    frame["note"] = [f"short note {i % 5}" for i in range(len(frame))]
    frame = frame.astype({"note": object})
    frame.loc[3, "note"] = "word " * 2_000_000  # 10 MB in one cell
    path.write_bytes(_csv(frame))


def _all_text_empty(path: Path) -> None:
    frame = good_frame()
    frame["note"] = ""
    path.write_bytes(_csv(frame))


def _constant_only(path: Path) -> None:
    path.write_bytes(_csv(pd.DataFrame({"c": [7] * 10, "d": ["same"] * 10})))


def _all_infinite(path: Path) -> None:
    path.write_text("x,y\ninf,1\n-inf,2\ninf,3\n")


def _duplicate_ids(path: Path) -> None:
    frame = good_frame()
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    frame.loc[5, "id"] = "r1"
    path.write_bytes(_csv(frame))


def _empty_row(path: Path) -> None:
    frame = good_frame().astype(object)
    frame.loc[7, ["x", "y", "kind"]] = None
    path.write_bytes(_csv(frame))


def _latin1(path: Path) -> None:
    path.write_bytes("name,x\nJosé,1\nZoë,2\n".encode("latin-1"))


def _jsonl_broken(path: Path) -> None:
    path.write_text('{"x": 1, "y": 2}\n{"x": 2, "y": 3\n{"x": 3, "y": 1}\n')


def _jsonl_array(path: Path) -> None:
    path.write_text('{"x": 1, "y": 2}\n[1, 2]\n')


def _ragged(path: Path) -> None:
    path.write_text("x,y\n1,2\n3,4,5\n6,7\n")


def _short(path: Path) -> None:
    path.write_text("x,y,kind\n1,2,a\n3,4\n6,7,b\n")


def _gzip_garbage(path: Path) -> None:
    path.write_bytes(b"\x1f\x8b\x08\x00this is not really gzip data at all")


CATALOGUE: tuple[BadInput, ...] = (
    BadInput("empty_file", "empty.csv", _bytes(b""), error=InputError, words=("empty",)),
    BadInput(
        "header_only", "header.csv", _bytes(b"x,y,kind\n"), error=InputError, words=("no data",)
    ),
    BadInput(
        "blank_lines_only", "blank.csv", _bytes(b"\n\n\n"), error=InputError, words=("empty",)
    ),
    BadInput(
        "semicolon_delimiter",
        "semi.csv",
        _bytes(b"x;y;kind\n1;2;a\n3;4;b\n"),
        error=InputError,
        words=("delimiter", "';'"),
    ),
    BadInput("latin1_not_utf8", "latin1.csv", _latin1, error=InputError, words=("UTF-8",)),
    BadInput(
        "binary_png",
        "picture.csv",
        _bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
        error=InputError,
        words=("binary",),
    ),
    BadInput(
        "duplicated_column",
        "dupcol.csv",
        _bytes(b"x,y,x\n1,2,3\n4,5,6\n"),
        error=InputError,
        words=("duplicated", "'x'"),
    ),
    BadInput(
        "ragged_row",
        "ragged.csv",
        _ragged,
        error=InputError,
        words=("malformed", "line 3"),
    ),
    BadInput(
        "short_row",
        "short.csv",
        _short,
        error=InputError,
        words=("malformed", "line 3 has 2 fields"),
    ),
    BadInput(
        "text_column_missing",
        "notext.csv",
        _frame_csv(good_frame),
        args=("--text-column", "remarks"),
        error=ConfigError,
        words=("--text-column", "'remarks'"),
    ),
    BadInput(
        "text_column_all_empty",
        "emptytext.csv",
        _all_text_empty,
        args=("--text-column", "note"),
        error=ValidationFailed,
        words=("'note'", "empty"),
    ),
    BadInput(
        "excluded_column_missing",
        "noexcl.csv",
        _frame_csv(good_frame),
        args=("--exclude-columns", "species"),
        error=ConfigError,
        words=("--exclude-columns", "'species'"),
    ),
    BadInput(
        "id_column_missing",
        "noid.csv",
        _frame_csv(good_frame),
        args=("--id-column", "key"),
        error=ConfigError,
        words=("--id-column", "'key'"),
    ),
    BadInput(
        "only_constant_columns",
        "constant.csv",
        _constant_only,
        error=ValidationFailed,
        words=("c: constant", "d: constant"),
    ),
    BadInput(
        "every_row_infinite",
        "allinf.csv",
        _all_infinite,
        error=ValidationFailed,
        words=("every row", "row 0", "column x", "infinite"),
    ),
    BadInput(
        "single_row",
        "one.csv",
        _bytes(b"x,y\n1,2\n"),
        error=ValidationFailed,
        words=("only 1 data row", "at least 2"),
    ),
    BadInput(
        "fewer_rows_than_k_min",
        "few.csv",
        _bytes(b"x,y\n1,2\n2,3\n5,1\n"),
        args=("--k-min", "5", "--k-max", "6"),
        error=ConfigError,
        words=("--k-min 5", "few.csv has 3 rows to cluster", "at most 2 clusters"),
    ),
    BadInput(
        "jsonl_broken_line",
        "broken.jsonl",
        _jsonl_broken,
        error=InputError,
        words=("line 2", "not valid JSON"),
    ),
    BadInput(
        "jsonl_array_line",
        "array.jsonl",
        _jsonl_array,
        error=InputError,
        words=("line 2", "not an object"),
    ),
    BadInput(
        "parquet_list_column",
        "nested.parquet",
        _parquet_nested,
        error=InputError,
        words=("'tags'", "unsupported"),
    ),
    BadInput(
        "parquet_truncated",
        "cut.parquet",
        _parquet_truncated,
        error=InputError,
        words=("Parquet",),
    ),
    BadInput("gzip_corrupt", "bad.csv.gz", _gzip_garbage, error=InputError, words=("damaged",)),
    BadInput("path_missing", "absent.csv", lambda path: None, error=InputError, words=("no such",)),
    BadInput("directory", "folder.csv", _directory, error=InputError, words=("directory",)),
    BadInput(
        "unsupported_suffix",
        "table.xlsx",
        _bytes(b"PK\x03\x04 not really"),
        error=InputError,
        words=("unsupported file type", ".xlsx"),
    ),
    # Not errors: one bad row among many is quarantined with its reason and the run goes on.
    BadInput(
        "one_infinity",
        "oneinf.csv",
        _frame_csv(_with("x", 4, "inf")),
        quarantined={4: "column x: inf is infinite"},
    ),
    BadInput(
        "overflow_number",
        "overflow.csv",
        _frame_csv(_with("y", 9, "1e400")),
        quarantined={9: "column y"},
    ),
    BadInput(
        "word_in_numeric_column",
        "mixed.csv",
        _frame_csv(_with("x", 2, "twelve")),
        quarantined={2: "column x: 'twelve' is not a number"},
    ),
    BadInput(
        "repeated_id",
        "dupid.csv",
        _duplicate_ids,
        args=("--id-column", "id"),
        quarantined={5: "column id: 'r1' repeats an earlier id"},
    ),
    BadInput(
        "row_without_any_value",
        "emptyrow.csv",
        _empty_row,
        quarantined={7: "every feature column and the text are empty"},
    ),
    BadInput(
        "ten_mb_text",
        "hugetext.csv",
        _huge_text,
        args=("--text-column", "note"),
        quarantined={3: "column note: text too long (10000000 characters)"},
    ),
)


def write_case(case: BadInput, folder: Path) -> Path:
    """Write ``case`` into ``folder`` and return the path to pass to the CLI."""
    path = folder / case.filename
    case.write(path)
    return path
