"""The console script as a user meets it: help, and bad input caught before any flow starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from clusterflow.errors import InputError
from clusterflow.io import read_header
from tests.conftest import bundled
from tests.robustness.badfiles import FAST, good_frame

CLI = [sys.executable, "-m", "clusterflow_cli.main"]


def test_help_lists_every_command():
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("train", "impute", "score", "monitor", "up", "down", "serve"):
        assert command in out


LEAVING = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from clusterflow_cli.main import leave

atexit.register(lambda: print("hook ran", flush=True))
pool = ThreadPoolExecutor(1)  # kept, idle, as importing openvino leaves one
pool.submit(print, "idle worker left", end=" ").result()
threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
print("unflushed", end="")
sys.stderr.write("on stderr")
leave(3)
print("never")
"""


def test_the_console_exit_keeps_the_ends_of_a_normal_exit(tmp_path):
    # leave() skips the native teardown, not what a normal exit does first (an idle executor's
    # worker thread is stopped, not waited for forever).
    proc = subprocess.run(
        [sys.executable, "-c", LEAVING], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 3
    assert proc.stdout == "idle worker left unflushedthread done\nhook ran\n"
    assert proc.stderr == "on stderr"


def test_the_console_script_exits_with_the_command_status(tmp_path):
    proc = subprocess.run(
        [*CLI, "score", "missing.csv", "--out", "scored.csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("clusterflow: error: ") and "missing.csv" in proc.stderr


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


@pytest.mark.parametrize(
    ("command", "out", "words"),
    [
        ("impute", "rows.csv", "is the input file"),
        ("score", "rows.csv", "is the input file"),
        ("impute", "rows.quarantine.csv", "where impute writes the rows it quarantines"),
        ("impute", "rows.jsonl", "the input file"),  # its quarantine file is the input
    ],
)
def test_an_output_never_replaces_the_input(tmp_path, command, out, words):
    data = "rows.quarantine.csv" if out == "rows.jsonl" else "rows.csv"
    path = tmp_path / data
    path.write_text("a,b\n1,2\n2,\n3,4\n")
    proc = subprocess.run(
        [*CLI, command, data, "--out", out], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert words in line
    assert path.read_text() == "a,b\n1,2\n2,\n3,4\n"


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


BIG_ID = 558672533168590848
"""An 18-digit id (a tweet's): above 2**53, so a float64 holds another number."""


@pytest.fixture(scope="module")
def int_ids(prefect_harness, tmp_path_factory):
    """Integer ids with one blank (row 5) and one repeat (row 9), trained by the CLI.

    Read by inference, such a column is float64: every id came out as ``1000.0``.
    """
    from prefect.settings import PREFECT_API_URL

    tmp = tmp_path_factory.mktemp("int-ids")
    frame = good_frame(40)
    ids: list[int | None] = list(range(1000, 1040))
    ids[5], ids[9] = None, ids[8]
    frame.insert(0, "pid", pd.array(ids, dtype="Int64"))
    path = tmp / "ids.csv"
    frame.to_csv(path, index=False)
    assert path.read_text().splitlines()[1].startswith("1000,")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_HOME=str(tmp / "prefect-home"),
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*CLI, *args, "--workspace", str(tmp / "ws")],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=600,
        )

    trained = run(
        *("train", str(path), "--id-column", "pid", "--model-name", "ids", "--json", *FAST),
        *("--out", str(tmp / "run")),
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    return path, summary, run


def test_train_writes_integer_ids_as_written_and_quarantines_a_blank_id(int_ids):
    _, summary, _ = int_ids
    assignments = pd.read_csv(summary["outputs"]["assignments"], dtype=str)
    assert list(assignments.columns) == ["pid", "cluster"]
    expected = [str(i) for i in range(1000, 1040) if i not in (1005, 1009)]
    assert assignments["pid"].tolist() == expected  # 1000, not 1000.0
    quarantine = pd.read_csv(summary["outputs"]["quarantine"], dtype=str, keep_default_na=False)
    assert dict(zip(quarantine["pid"], quarantine["reason"], strict=True)) == {
        "": "column pid is empty",
        "1008": "column pid: '1008' repeats an earlier id",
    }
    columns = summary["columns"]
    assert columns["id"] == "pid" and columns["numeric"] == ["x", "y"]  # the id is no feature
    assert columns["categorical"] == ["kind"]


def test_score_writes_integer_ids_as_written(int_ids, tmp_path):
    path, _, run = int_ids
    out = tmp_path / "scored.csv"
    proc = run("score", str(path), "--out", str(out), "--model", "models:/ids@champion")
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)["pid"]
    assert scored["pid"].tolist() == written.tolist()  # every row, the blank id left blank
    assert scored["pid"][0] == "1000"


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_score_keeps_an_18_digit_id_with_a_null(int_ids, tmp_path, suffix):
    path, _, run = int_ids
    batch = pd.read_csv(path).head(6)
    batch["pid"] = pd.array([BIG_ID + i for i in range(6)], dtype="Int64")
    batch.loc[2, "pid"] = pd.NA
    data = tmp_path / f"batch.{suffix}"
    if suffix == "parquet":
        batch.to_parquet(data, index=False)
    else:
        batch.to_json(data, orient="records", lines=True)
    out = tmp_path / "scored.csv"
    # the model's id column (pid), read as text
    proc = run("score", str(data), "--out", str(out), "--model", "models:/ids@champion")
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert scored["pid"].tolist() == [
        str(BIG_ID),
        str(BIG_ID + 1),
        "",
        *map(str, (BIG_ID + 3, BIG_ID + 4, BIG_ID + 5)),
    ]


def test_impute_leaves_integer_ids_as_written(int_ids, tmp_path):
    path, _, run = int_ids
    out = tmp_path / "filled.csv"
    proc = run("impute", str(path), "--id-column", "pid", "--out", str(out), "--method", "mean")
    assert proc.returncode == 0, proc.stderr
    filled = pd.read_csv(out, dtype=str)
    assert filled["pid"].tolist()[:3] == ["1000", "1001", "1002"]
    quarantine = pd.read_csv(tmp_path / "filled.quarantine.csv", dtype=str)
    assert quarantine["pid"].tolist()[1:] == ["1008"] and pd.isna(quarantine["pid"][0])


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


@pytest.mark.parametrize(
    ("make", "out", "folder", "words"),
    [
        (lambda p: (p / "taken.csv").write_text("x\n"), "taken.csv", True, "is a file"),
        (lambda p: (p / "dir.csv").mkdir(), "dir.csv", False, "is a folder"),
        (lambda p: (p / "data.csv").write_text("x\n"), "data.csv/sub/x.csv", False, "is a file"),
        (lambda p: p.chmod(0o555), "new/x.csv", False, "cannot write in"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    tmp_path, monkeypatch, make, out, folder, words
):
    from clusterflow.errors import ConfigError
    from clusterflow_cli.preflight import check_output

    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    try:
        if words == "cannot write in" and os.access(tmp_path, os.W_OK) and os.geteuid() == 0:
            monkeypatch.chdir("/proc")  # root writes through permission bits, not into /proc
        with pytest.raises(ConfigError, match=words) as raised:
            check_output(out, folder=folder)
        assert f"--out {out}" in str(raised.value)
    finally:
        tmp_path.chmod(0o755)
    check_output(tmp_path / "fresh" / "deeper", folder=True)  # missing folders are fine
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.glob(".clusterflow-probe-*"))


@pytest.mark.parametrize("command", ["score", "monitor", "impute", "train"])
def test_every_command_checks_its_output_first(tmp_path, monkeypatch, capsys, command):
    from clusterflow_cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n2,3\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be\n")
    assert main([command, "rows.csv", "--out", "blocker/out.csv"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "--out blocker/out.csv" in line and "is a file" in line
    assert not (tmp_path / ".clusterflow").exists()


FULL_DISK = """
import sys
from clusterflow_cli.main import leave

class Full:  # stdout on a full disk: the buffered summary cannot be written out
    def write(self, text):
        return len(text)

    def flush(self):
        raise OSError(28, "No space left on device")

sys.stdout = Full()
print("summary")
leave(0)
"""


def test_an_output_cut_short_by_a_full_disk_is_not_a_success(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FULL_DISK], capture_output=True, text=True)
    assert proc.returncode == 120
    assert proc.stderr.startswith("clusterflow: error: could not write the output")
    gone = FULL_DISK.replace("OSError(28, ", "BrokenPipeError(32, ")  # the reader left (| head)
    proc = subprocess.run([sys.executable, "-c", gone], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""  # not an error of ours
