"""The console script as a user meets it: help, and bad input caught before any flow starts."""

from __future__ import annotations

import os
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
        ("a,b\n1,2\n2,3\n", ("--time-column", "when"), ("semi.csv", "--time-column 'when'")),
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


def test_score_refuses_an_output_that_is_not_csv(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n2,3\n")
    proc = subprocess.run(
        [*CLI, "score", str(path), "--out", "scored.parquet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "--out scored.parquet" in line and "ending in .csv" in line
    assert not (tmp_path / "scored.parquet").exists()


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


def test_the_last_lines_name_each_runner_up_and_why_it_was_not_chosen(capsys, tmp_path):
    from clusterflow_cli.main import _print_train_summary
    from clusterflow_orchestration.tasks.outputs import runner_ups_text

    finer = {
        "role": "finer",
        "algorithm": "agglomerative",
        "k": 5,
        "evidence": 3.264,
        "silhouette": 0.436,
        "stability": 0.94,
        "caveat": "not chosen: prediction strength 0.838 under 0.85",
    }
    coarser = {  # a record from before caveats existed has no such key
        "role": "coarser",
        "algorithm": "kmeans",
        "k": 2,
        "evidence": 1.928,
        "silhouette": 0.503,
        "stability": 0.992,
    }
    summary = {
        "outputs": {"assignments": str(tmp_path / "assignments.csv")},
        "cluster_sizes": {"0": 20, "1": 76},
        "rows_in": 96,
        "rows_clustered": 96,
        "rows_quarantined": 0,
        "imputer": "knn",
        "k": 3,
        "algorithm": "kmeans",
        "runner_ups": [coarser, finer],
        "promoted": False,
    }
    _print_train_summary(summary, None)
    out = capsys.readouterr().out
    assert (
        "runner-up (finer): k=5 with agglomerative (evidence 3.264, silhouette 0.436; "
        "not chosen: prediction strength 0.838 under 0.85; pin it with --k 5)"
    ) in out
    assert (
        "runner-up (coarser): k=2 with kmeans (evidence 1.928, silhouette 0.503; pin it with --k 2)"
    ) in out
    assert runner_ups_text([coarser, finer]) == (
        "coarser kmeans k=2 (evidence 1.928, silhouette 0.503); finer agglomerative k=5 "
        "(evidence 3.264, silhouette 0.436; not chosen: prediction strength 0.838 under 0.85)"
    )


@pytest.mark.parametrize("command", ["train", "score"])
def test_an_id_column_named_cluster_is_refused_in_one_line(tmp_path, command):
    """The outputs are <id>,cluster: an id named cluster would leave one column, the ids lost."""
    path = tmp_path / "c.csv"
    path.write_text("cluster,x\n7,1.0\n8,2.0\n9,3.0\n")
    out = tmp_path / ("o.csv" if command == "score" else "o")
    # Should the check let it through, train must not start a kept server: nothing listens here.
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    proc = subprocess.run(
        [*CLI, command, str(path), "--id-column", "cluster", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("clusterflow: error: c.csv: --id-column 'cluster'")
    assert "rename the column in the file" in line
    assert not (tmp_path / ".clusterflow").exists() and not out.exists()
