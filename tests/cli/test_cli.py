"""The console script as a user meets it: help, and bad input caught before any flow starts."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from clusterflow.errors import InputError
from clusterflow.io import read_header
from tests.conftest import bundled

CLI = [sys.executable, "-m", "clusterflow_cli.main"]


def test_help_lists_every_command():
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("train", "impute", "score", "monitor", "up", "down", "serve"):
        assert command in out


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        ("a;b;c\n1;2;3\n", (), ("semi.csv", "';' as its delimiter")),
        ("a,b\n1,2\n2,3\n", ("--text-column", "txt"), ("semi.csv", "--text-column 'txt'")),
    ],
)
def test_bad_input_gives_exactly_one_line_on_stderr(tmp_path, content, args, words):
    path = tmp_path / "semi.csv"
    path.write_text(content)
    proc = subprocess.run(
        [*CLI, "train", str(path), *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("clusterflow: error: ") and all(w in lines[0] for w in words)
    assert not (tmp_path / ".clusterflow").exists()  # nothing started, nothing written


def test_read_header_of_each_format(tmp_path):
    frame = pd.DataFrame({"x": [1.0], "name": ["a"]})
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    (tmp_path / "a.csv").write_bytes("\ufeffx,name\n1,a\n".encode())
    for name in ("a.parquet", "a.jsonl", "a.csv"):
        assert read_header(tmp_path / name)[:2] == ["x", "name"]
    assert read_header(bundled("penguins.csv"))[0] == "species"
    (tmp_path / "b.jsonl").write_text('{"x": 1\n')
    with pytest.raises(InputError, match="line 1 is not valid JSON"):
        read_header(tmp_path / "b.jsonl")
