"""The console script as a user runs it: one voice, one error line, checks first, lazy imports.

Every case runs ``.venv/bin/clusterflow`` (or the same interpreter with ``-m``) in a subprocess
and reads the whole stderr. Commands that need a Prefect API share one workspace, so the first of
them starts the kept local server and the others reuse it; the fixture stops it with
``clusterflow down`` (which is tested that way too).
"""

from __future__ import annotations

import ast
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clusterflow_cli.main import build_parser
from tests.conftest import ROOT, bundled
from tests.robustness.badfiles import CATALOGUE, FAST, write_case

# A test may pay for a module fixture's CLI run as well as its own (600 s each at most), and the
# first CLI run may start the workspace's Prefect server: more than the global 900 s.
pytestmark = pytest.mark.timeout(1800)
SCRIPT = ROOT / ".venv" / "bin" / "clusterflow"
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "clusterflow_cli.main"]
ERRORS = [c for c in CATALOGUE if c.error is not None]
# Caught by the preflight (no Prefect at all) or a cheap flow run: the default suite runs these,
# the whole catalogue runs under -m slow.
DEFAULT = {"header_only", "text_column_missing", "every_row_infinite"}


def _env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        PREFECT_HOME=str(tmp / "prefect-home"),
        HF_HUB_OFFLINE="1",
        TERM="dumb",
    )
    return env


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory):
    """A workspace whose kept Prefect server (started by the first command) is stopped after."""
    tmp = tmp_path_factory.mktemp("voice")
    yield tmp
    done = subprocess.run(
        [*CLI, "down", "--workspace", str(tmp / "ws")],
        capture_output=True,
        text=True,
        env=_env(tmp),
        cwd=tmp,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _run(args: list[str], tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=tmp, env=_env(tmp), timeout=timeout
    )


def _params():
    return [
        pytest.param(c, id=c.name, marks=() if c.name in DEFAULT else pytest.mark.slow)
        for c in ERRORS
    ]


@pytest.mark.parametrize("case", _params())
def test_every_bad_input_is_one_stderr_line(case, shared_ws, tmp_path):
    path = write_case(case, tmp_path)
    options = list(case.args)
    for flag, value in zip(FAST[::2], FAST[1::2], strict=True):
        if flag not in options:
            options += [flag, value]
    proc = _run(
        [
            "train",
            str(path),
            "--workspace",
            str(shared_ws / "ws"),
            "--out",
            str(tmp_path / "o"),
            *options,
        ],
        shared_ws,
    )
    lines = proc.stderr.splitlines()
    # the one line may follow the notice that the kept server was started (first command only)
    lines = [line for line in lines if "starting a local Prefect server" not in line]
    assert proc.returncode == case.error.exit_code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("clusterflow: error: ") and path.name in lines[0]
    for word in case.words:
        assert word in lines[0]
    assert ".;" not in lines[0] and proc.stdout == ""


@pytest.mark.parametrize("command", ["score", "monitor", "impute"])
def test_every_command_checks_the_file_first(command, tmp_path):
    missing = tmp_path / "nope.csv"
    out = str(tmp_path / ("o.csv" if command != "monitor" else "o"))
    proc = _run(
        [command, str(missing), "--out", out, "--workspace", str(tmp_path / "ws")], tmp_path
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "nope.csv" in proc.stderr, proc.stderr
    assert not (tmp_path / "ws" / "stack").exists()  # no server, no flow run


@pytest.mark.parametrize("command", ["score", pytest.param("monitor", marks=pytest.mark.slow)])
def test_unknown_model_is_one_line_without_double_punctuation(command, tmp_path):
    data = bundled("penguins.csv")
    out = str(tmp_path / ("o.csv" if command == "score" else "o"))
    proc = _run(
        [
            command,
            str(data),
            "--out",
            out,
            "--model",
            "models:/nothing@champion",
            "--workspace",
            str(tmp_path / "ws"),
        ],
        tmp_path,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no model models:/nothing@champion" in lines[0] and ".;" not in lines[0]
    assert "train a model first" in lines[0]
    assert not (tmp_path / "ws" / "stack").exists()


def _hint_flags() -> set[tuple[str, str]]:
    """Every ``--flag`` named in a ``hint=`` of the code (file, flag)."""
    found = set()
    for folder in ("clusterflow", "clusterflow_cli", "tasks", "flows", "deployments"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                for kw in node.keywords:
                    if kw.arg != "hint":
                        continue
                    for part in ast.walk(kw.value):
                        if isinstance(part, ast.Constant) and isinstance(part.value, str):
                            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", part.value):
                                found.add((path.name, flag))
    return found


def test_every_flag_named_in_an_error_hint_exists():
    parser = build_parser()
    known = set()
    for action in parser._actions:
        for sub in getattr(action, "choices", None) or {}:
            sub_parser = action.choices[sub]
            for sub_action in sub_parser._actions:
                known.update(sub_action.option_strings)
    flags = _hint_flags()
    assert len(flags) >= 5  # the scan finds hints at all
    unknown = sorted((f, flag) for f, flag in flags if flag not in known)
    assert not unknown, unknown


def test_help_is_quick_and_imports_nothing_heavy():
    code = (
        "import sys; from clusterflow_cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('prefect', 'mlflow', 'torch', 'sentence_transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _text_file(tmp: Path) -> Path:
    rows = []
    for i in range(24):
        topic = ["engine fan blade ingested goose", "windshield cracked by a hawk"][i % 2]
        rows.append({"x": float(i % 2) * 5 + (i % 5) * 0.1, "remarks": f"{topic} report {i}"})
    path = tmp / "reports.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _pty_run(args: list[str], tmp: Path, timeout: float = 600) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdout and stderr; return (code, everything)."""
    main, child = pty.openpty()
    env = {**_env(tmp), "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [*CLI, *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        cwd=tmp,
        env=env,
        close_fds=True,
    )
    os.close(child)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            # it may have written its last lines between the select and the poll: drain them
            while select.select([main], [], [], 0)[0]:
                try:
                    data = os.read(main, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            break
    os.close(main)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _train_text_in_pty(
    path: Path, ws: Path, out: Path, *extra: str, timeout: float = 600
) -> tuple[int, str]:
    """``train`` a file with a ``remarks`` text column, unregistered, in a pseudo-terminal."""
    args = ["train", str(path), "--text-column", "remarks", "--workspace", str(ws / "ws")]
    return _pty_run([*args, "--out", str(out), "--no-register", *extra], ws, timeout=timeout)


def test_terminal_shows_progress_and_no_prefect_lines(shared_ws, tmp_path):
    path = _text_file(tmp_path)
    code, text = _train_text_in_pty(path, shared_ws, tmp_path / "out", *FAST)
    assert code == 0, text
    assert "embedding texts" in text and "24/24" in text
    assert "sweeping candidates" in text
    assert "| INFO" not in text and "Task run" not in text and "Flow run" not in text
    assert "Traceback" not in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["stages"]) >= {"read", "validate", "impute", "embed", "sweep"}
    assert summary["stages"]["embed"]["rows_out"] == 24
    for card in summary["clusters"]:
        assert card["label"]
        assert f"cluster {card['cluster']}:" in text  # the final lines name each cluster


@pytest.mark.slow
def test_verbose_shows_prefect_lines(shared_ws, tmp_path):
    path = write_case(next(c for c in CATALOGUE if c.name == "every_row_infinite"), tmp_path)
    proc = _run(
        ["train", str(path), "--workspace", str(shared_ws / "ws"), "--verbose", *FAST], shared_ws
    )
    assert proc.returncode != 0
    assert "Flow run" in proc.stderr or "| INFO" in proc.stderr, proc.stderr
    assert proc.stderr.count("clusterflow: error:") == 1


@pytest.fixture(scope="module")
def trained(shared_ws):
    """A small table with gaps, a mostly-empty column and one bad row, trained by the CLI."""
    from tests.robustness.badfiles import good_frame

    frame = good_frame(40).astype({"x": object})
    frame.loc[3, "x"] = None
    frame.loc[5, "y"] = None
    frame.loc[7, "kind"] = None
    frame.loc[10, "x"] = "inf"  # quarantined
    frame["mostly_empty"] = [1.0 if i % 8 == 0 else None for i in range(40)]  # 87% missing
    path = shared_ws / "gappy.csv"
    frame.to_csv(path, index=False)
    proc = _run(
        [
            "train",
            str(path),
            "--workspace",
            str(shared_ws / "ws"),
            "--out",
            str(shared_ws / "run"),
            "--model-name",
            "gappy",
            "--json",
            *FAST,
        ],
        shared_ws,
    )
    assert proc.returncode == 0, proc.stderr
    return path, json.loads(proc.stdout.strip().splitlines()[-1])


def test_impute_is_the_training_path(trained, shared_ws, tmp_path):
    path, summary = trained
    out = tmp_path / "filled.csv"
    proc = _run(
        [
            "impute",
            str(path),
            "--out",
            str(out),
            "--method",
            "mean",
            "--workspace",
            str(tmp_path / "other-ws"),
            "--json",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["rows"] == summary["rows_clustered"] == 39
    assert result["rows_quarantined"] == summary["rows_quarantined"] == 1
    filled = pd.read_csv(out)
    # the training flow's imputed table, from its own stage store (another workspace)
    # (the shared workspace holds other runs' stages too: pick this table's by its shape)
    stages = shared_ws / "ws" / "stages" / "impute"
    tables = [pd.read_parquet(p) for p in stages.glob("*/imputed.parquet")]
    (training,) = [t for t in tables if list(t.columns) == result["features"] and len(t) == 39]
    assert "mostly_empty" not in result["features"]  # --max-missing, as training decided
    pd.testing.assert_frame_equal(
        filled[result["features"]].reset_index(drop=True),
        training.reset_index(drop=True),
        check_dtype=False,
    )
    assert filled["mostly_empty"].isna().sum() == 39 - 5  # left as it is
    quarantine = pd.read_csv(Path(result["quarantine"]), dtype=str, keep_default_na=False)
    trained_q = pd.read_csv(
        Path(summary["outputs"]["quarantine"]), dtype=str, keep_default_na=False
    )
    pd.testing.assert_frame_equal(quarantine, trained_q)


def test_impute_keeps_the_types_of_the_file(tmp_path):
    """Columns impute does not fill come back as the file had them; filled ones keep bool and
    category types (a date was written as epoch milliseconds, an object as its repr)."""
    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "flag": pd.array([bool(v) for v in rng.integers(0, 2, n)], dtype="boolean"),
            "grp": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "when": pd.date_range("2020-01-01", periods=n, freq="D"),
        }
    )
    frame.loc[[1, 5], "x"] = np.nan
    frame.loc[3, "flag"] = pd.NA
    frame.loc[4, "grp"] = np.nan
    frame.to_parquet(tmp_path / "typed.parquet", index=False)
    for out in ("filled.parquet", "filled.jsonl"):
        proc = _run(
            ["impute", "typed.parquet", "--out", out, "--exclude-columns", "when", "--json"]
            + ["--method", "mean"],
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"categorical_method", "column_scores"} <= set(result)
    filled = pd.read_parquet(tmp_path / "filled.parquet")
    assert str(filled["flag"].dtype) == "boolean" and filled["flag"].notna().all()
    assert isinstance(filled["grp"].dtype, pd.CategoricalDtype)
    assert set(filled["grp"]) <= {"a", "b", "c"}
    pd.testing.assert_series_equal(filled["when"], frame["when"])
    lines = (tmp_path / "filled.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["when"].startswith("2020-01-01T00:00:00")

    nested = tmp_path / "nested.jsonl"
    nested.write_text(
        "".join(
            json.dumps({"x": None if i == 2 else float(i), "y": i % 3, "meta": {"k": i}}) + "\n"
            for i in range(30)
        )
    )
    proc = _run(["impute", "nested.jsonl", "--out", "out.jsonl", "--method", "mean"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows[2]["meta"] == {"k": 2} and rows[2]["x"] is not None


def test_score_of_a_tabular_model_imports_no_torch_nor_mlflow(trained, shared_ws, tmp_path):
    path, summary = trained
    out = tmp_path / "scored.csv"
    code = (
        "import json, sys; from clusterflow_cli.main import main; "
        f"rc = main(['score', {str(path)!r}, '--model', 'models:/gappy@champion', "
        f"'--out', {str(out)!r}, '--workspace', {str(shared_ws / 'ws')!r}]); "
        "print(json.dumps({'rc': rc, 'loaded': sorted(m for m in ('torch', "
        "'sentence_transformers', 'transformers', 'prefect', 'mlflow', 'dask') "
        "if m in sys.modules)}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=shared_ws,
        env=_env(shared_ws),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"rc": 0, "loaded": []}, proc.stdout
    assert proc.stderr == ""
    scored = pd.read_csv(out)
    assignments = pd.read_csv(summary["outputs"]["assignments"])
    merged = assignments.merge(scored, on="row", suffixes=("_train", "_score"))
    assert len(merged) == 39 and (merged["cluster_train"] == merged["cluster_score"]).all()


def test_score_on_a_dask_cluster_writes_the_same_file(trained, shared_ws, tmp_path):
    path, _ = trained
    model = ["--model", "models:/gappy@champion", "--workspace", str(shared_ws / "ws")]
    outs = {}
    for name, extra in (("plain", []), ("dask", ["--dask-address", "local:1"])):
        outs[name] = tmp_path / f"{name}.csv"
        proc = _run(["score", str(path), "--out", str(outs[name]), *model, *extra], shared_ws, 300)
        assert proc.returncode == 0, proc.stderr
        assert "scored 40 rows" in proc.stdout
        # The row training quarantined is scored with its cell as a gap, and said so.
        assert "1 row had a number that could not be read (first: row 10, column x: inf)" in (
            proc.stdout
        )
    assert outs["dask"].read_bytes() == outs["plain"].read_bytes()
    # README, Scaling out: with --dask-address DATA may be a folder of Parquet files.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.iloc[:25].to_parquet(parts / "a.parquet", index=False)
    frame.iloc[25:].to_parquet(parts / "b.parquet", index=False)
    folder = tmp_path / "f.csv"
    args = ["score", str(parts), "--out", str(folder), *model, "--dask-address", "local:1"]
    proc = _run(args, shared_ws, 300)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(pd.read_csv(folder), pd.read_csv(outs["plain"]))
    bad = _run(
        ["score", str(path), "--out", str(tmp_path / "x.csv"), "--dask-address", "local:x"],
        shared_ws,
        120,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_score_with_a_prefect_api_records_one_flow_run(
    trained, shared_ws, tmp_path, prefect_harness
):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    path, summary = trained
    out = tmp_path / "scored.csv"
    env = {**_env(shared_ws), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    args = ["score", str(path), "--model", "models:/gappy@champion", "--out", str(out)]
    proc = subprocess.run(
        [*CLI, *args, "--workspace", str(shared_ws / "ws")],
        capture_output=True,
        text=True,
        cwd=shared_ws,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    (run_id,) = re.findall(r"/runs/flow-run/([0-9a-f-]{36})", proc.stdout)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        flow = client.read_flow(flow_run.flow_id)
    assert flow.name == "clusterflow-score" and flow_run.state.is_completed()
    assert flow_run.parameters["config"]["model_uri"] == "models:/gappy@champion"
    assert flow_run.state.message == "scored 40 rows with models:/gappy@champion"
    scored = pd.read_csv(out)
    assignments = pd.read_csv(summary["outputs"]["assignments"])
    merged = assignments.merge(scored, on="row", suffixes=("_train", "_score"))
    assert len(merged) == 39 and (merged["cluster_train"] == merged["cluster_score"]).all()


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 19,302 texts embedded on a shared 2-core machine
def test_birds_training_shows_embedding_progress_on_a_terminal(shared_ws, tmp_path):
    from tests.conftest import shared

    birds = shared("birds.csv")
    code, text = _train_text_in_pty(birds, shared_ws, tmp_path / "out", timeout=3300)
    assert code == 0, text[-3000:]
    assert "embedding texts" in text and "texts/s" in text
    assert "| INFO" not in text and "Task run" not in text and "Flow run" not in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stages"]["embed"]["seconds"] > 0
    labels = [c["label"] for c in summary["clusters"] if c["cluster"] >= 0]
    assert len(set(labels)) == len(labels)  # the cards tell the clusters apart
