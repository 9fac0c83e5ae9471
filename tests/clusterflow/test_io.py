import gzip
import json

import pandas as pd
import pytest

from clusterflow.errors import InputError
from clusterflow.io import atomic_path, fingerprint, read_header, read_raw_rows, read_table


def test_reads_csv_with_row_index(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x,y\n1,a\n2,b\n")
    frame = read_table(path)
    assert list(frame.columns) == ["x", "y"]
    assert frame.index.tolist() == [0, 1]
    assert frame["x"].tolist() == [1, 2]


def test_zero_padded_integers_stay_text(tmp_path):
    """Ids and postcodes written with leading zeros keep them (outputs must join back)."""
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("id,zip,n,x\n007,02134,0,-1\n010,10001,12,0\n")
    frame = read_table(path)
    assert frame["id"].tolist() == ["007", "010"]
    assert frame["zip"].tolist() == ["02134", "10001"]
    assert frame["n"].tolist() == [0, 12] and frame["x"].tolist() == [-1, 0]  # plain integers


BIG_ID = 558672533168590848
"""An 18-digit id (a tweet's): above 2**53, so a float64 holds another number."""


def test_text_columns_keep_integer_ids_with_a_gap_as_written(tmp_path):
    """An id column with a blank would read as float64: 1000.0, and a big id loses digits."""
    path = tmp_path / "a.csv"
    path.write_text(f"id,x\n1000,1.5\n,2.5\n{BIG_ID},3.5\n")
    assert read_table(path)["id"].tolist()[0] == 1000.0  # inferred: the defect's type
    frame = read_table(path, text_columns=["id", "not_in_the_file"])
    assert frame["id"].tolist()[::2] == ["1000", str(BIG_ID)] and pd.isna(frame["id"][1])
    assert frame["x"].tolist() == [1.5, 2.5, 3.5]  # other columns as inferred
    raw = read_raw_rows(path, [2], text_columns=["id"])
    assert raw["id"].tolist() == [str(BIG_ID)]


def test_text_columns_keep_a_big_id_in_jsonl_and_parquet(tmp_path):
    frame = pd.DataFrame({"id": pd.array([BIG_ID, None, 7], dtype="Int64"), "x": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    (tmp_path / "a.jsonl").write_text(
        f'{{"id": {BIG_ID}, "x": 1.0}}\n{{"id": null, "x": 2.0}}\n{{"id": 7, "x": 3.0}}\n'
    )
    for name in ("a.parquet", "a.jsonl"):
        got = read_table(tmp_path / name, text_columns=("id",))
        assert got["id"].tolist()[::2] == [str(BIG_ID), "7"] and pd.isna(got["id"][1]), name
        assert got["x"].tolist() == [1.0, 2.0, 3.0], name
        assert read_raw_rows(tmp_path / name, [0], text_columns=("id",))["id"].tolist() == [
            str(BIG_ID)
        ], name


def test_reads_gzip_parquet_and_jsonl_alike(tmp_path):
    frame = pd.DataFrame({"x": [1.5, None, 3.0], "c": ["a", "b", None]})
    frame.to_csv(tmp_path / "a.csv.gz", index=False, compression="gzip")
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    for name in ("a.csv.gz", "a.parquet", "a.jsonl"):
        got = read_table(tmp_path / name)
        assert got["x"].tolist()[::2] == [1.5, 3.0] and pd.isna(got["x"][1])
        assert got["c"].tolist()[:2] == ["a", "b"] and pd.isna(got["c"][2])


def test_header_check_gives_the_columns_a_full_read_gives(tmp_path):
    """The CLI's preflight reads only the header; it must name the columns the flow will see."""
    frame = pd.DataFrame({"x": [1.5, 2.0], "c": ["a", "b"], "n": [1, 2]})
    frame.to_csv(tmp_path / "a.csv.gz", index=False, compression="gzip")
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    (tmp_path / "a.jsonl").write_text("\n" + frame.to_json(orient="records", lines=True))
    for name in ("a.csv.gz", "a.parquet", "a.jsonl"):
        assert read_header(tmp_path / name) == list(read_table(tmp_path / name).columns)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="bad.parquet"):
        read_header(tmp_path / "bad.parquet")


def test_fingerprint_depends_on_content_not_name(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n1\n")
    (tmp_path / "c.csv").write_text("x\n2\n")
    assert fingerprint(tmp_path / "a.csv") == fingerprint(tmp_path / "b.csv")
    assert fingerprint(tmp_path / "a.csv") != fingerprint(tmp_path / "c.csv")


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        (b"", ".csv", "empty"),
        (b"a,b\n", ".csv", "no data rows"),
        (b"a;b;c\n1;2;3\n", ".csv", "delimiter"),
        (b"a,b\n\xff\xfe1,2\n", ".csv", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ".csv", "binary"),
        (b"a,b,a\n1,2,3\n", ".csv", "duplicated column"),
        (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", ".csv", "line 3 has 2 fields, the header 3"),
        (b'{"a": 1}\n{"a": 2\n', ".jsonl", "line 2 is not valid JSON"),
        (b"\n  \n", ".jsonl", "no records"),
        (b"PAR1 cut short", ".parquet", "Parquet"),
        (b"x\n1\n", ".xlsx", "unsupported file type"),
    ],
)
def test_bad_files_raise_input_error(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        read_table(path)
    assert str(path) in info.value.one_line()
    assert info.value.hint


def test_a_byte_order_mark_is_read_past_in_json_lines_as_in_csv(tmp_path):
    for name, body in (
        ("bom.jsonl", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'),
        ("bom.csv", "a,b\n1,x\n2,y\n"),
    ):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + body.encode())
        assert read_header(path) == ["a", "b"]
        assert read_table(path)["a"].tolist() == [1, 2]


def test_explicit_empty_fields_blank_lines_and_quoted_newlines_are_not_short(tmp_path):
    path = tmp_path / "fine.csv"
    path.write_text('a,b,c\n1,"two\nlines",3\n\n4,5,\n  \n,,\n')
    frame = read_table(path)
    assert frame.shape == (3, 3) and frame["c"].isna().sum() == 2
    long = tmp_path / "long.csv"  # a field beyond the csv module's default limit (131,072)
    long.write_text(f"id,text,x\n1,{'a' * 200_000},1\n2,b,\n")
    assert read_table(long)["text"].str.len().tolist() == [200_000, 1]
    trailing = tmp_path / "trailing.csv"  # a header ending in an empty name
    trailing.write_text("a,b,\n1,2\n3,4\n")
    assert read_table(trailing).shape == (2, 3)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        read_table(folder)


def test_raw_rows_are_returned_as_written(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x,y\n3,\n4.50,b\n")
    raw = read_raw_rows(path, [0, 1])
    assert raw["x"].tolist() == ["3", "4.50"]
    assert raw["y"].tolist() == ["", "b"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"half": True}))
        raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_gzip_not_utf8(tmp_path):
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write("name\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        read_table(path)


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    """Issue 13 item 9: drift.json (written atomically) was 0600 beside a 0644 HTML report."""
    import os
    import stat

    from clusterflow.io import write_csv, write_json

    old = os.umask(0o022)
    try:
        json_path = write_json({"drift_detected": False}, tmp_path / "drift.json")
        csv_path = write_csv(pd.DataFrame({"a": [1]}), tmp_path / "quarantine.csv")
        html_path = tmp_path / "drift_report.html"
        html_path.write_text("<html></html>")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (json_path, csv_path, html_path)}
    assert modes == {"drift.json": 0o644, "quarantine.csv": 0o644, "drift_report.html": 0o644}
