"""Every kind of bad input through `clusterflow train`: one typed error line, or a quarantine.

Cases run the CLI in-process (``clusterflow_cli.main.main``) under the real Prefect test server;
a few representative ones go through the installed console script in a subprocess, where the whole
stderr (Prefect's logs included) is checked for tracebacks.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from clusterflow_cli.main import main
from tests.robustness.badfiles import CATALOGUE, FAST, BadInput, write_case

ERRORS = [c for c in CATALOGUE if c.error is not None]
QUARANTINES = [c for c in CATALOGUE if c.error is None]
# Each in-process run costs ~10 s on the shared 2-core machine (Prefect flow run, MLflow): the
# default suite runs a representative few through the CLI, every kind through the stages below,
# and the whole catalogue through the CLI under -m slow.
CLI_DEFAULT = {
    "empty_file",
    "latin1_not_utf8",
    "text_column_missing",
    "every_row_infinite",
    "fewer_rows_than_k_min",
    "one_infinity",
    "row_without_any_value",
}


def _params(cases: list[BadInput]) -> list:
    return [
        pytest.param(c, id=c.name, marks=() if c.name in CLI_DEFAULT else pytest.mark.slow)
        for c in cases
    ]


CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "clusterflow"


def _train_args(case: BadInput, path: Path, tmp_path: Path) -> list[str]:
    args = ["train", str(path), "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws")]
    options = list(case.args)
    for flag, value in zip(FAST[::2], FAST[1::2], strict=True):
        if flag not in options:
            options += [flag, value]
    return args + options


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run ``clusterflow`` in-process; return the exit code, stdout and stderr.

    Plain StringIO streams (not capsys) because the CLI's log handlers outlive one test and must
    not write into a capture that pytest has closed; the handlers it adds are removed afterwards.
    """
    root = logging.getLogger()
    before = list(root.handlers)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
    return code, out.getvalue(), err.getvalue()


def _registered_versions() -> int:
    client = MlflowClient()
    return sum(
        len(client.search_model_versions(f"name='{m.name}'"))
        for m in client.search_registered_models()
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("clusterflow: error:")]


def test_catalogue_is_broad():
    assert len(ERRORS) >= 20
    assert len(QUARANTINES) >= 5
    assert len({c.name for c in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c.name)
def test_every_bad_input_is_a_typed_error_at_the_stages(case, tmp_path):
    from clusterflow import stages
    from clusterflow.config import TrainConfig
    from clusterflow.errors import ClusterflowError
    from clusterflow.store import StageStore

    path = write_case(case, tmp_path)
    options = dict(zip(case.args[::2], case.args[1::2], strict=True))
    config = TrainConfig(
        data=str(path),
        text_column=options.get("--text-column"),
        id_column=options.get("--id-column"),
        exclude_columns=tuple(filter(None, options.get("--exclude-columns", "").split(","))),
        workspace=str(tmp_path / "ws"),
        impute={"method": "mean"},
        sweep={
            "algorithms": ["kmeans"],
            "k_min": int(options.get("--k-min", 2)),
            "k_max": int(options.get("--k-max", 3)),
            "stability_resamples": 0,
        },
    )
    store = StageStore(tmp_path / "ws" / "stages")
    with pytest.raises(ClusterflowError) as info:
        snapshot = stages.ingest(path, store)
        validated = stages.validate(snapshot, config, store)
        imputed = stages.impute(validated, config, store)
        stages.sweep(validated, imputed, None, config, store)
    assert type(info.value) is case.error
    line = info.value.one_line()
    assert path.name in line
    for word in case.words:
        assert word in line, f"{word!r} missing from: {line}"
    assert info.value.hint


@pytest.mark.parametrize("case", _params(ERRORS))
def test_bad_input_ends_in_one_clear_line(case, tmp_path, prefect_harness, mlflow_uri):
    path = write_case(case, tmp_path)
    code, _, err = run_cli(_train_args(case, path, tmp_path))

    assert code == case.error.exit_code != 0
    lines = _error_lines(err)
    assert len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err
    assert path.name in line, f"the message must name the file: {line}"
    for word in case.words:
        assert word in line, f"{word!r} missing from: {line}"
    assert ";" in line, f"the line needs a hint of what to do: {line}"
    assert _registered_versions() == 0
    assert not (tmp_path / "out" / "summary.json").exists()


def test_debug_shows_the_traceback(tmp_path, prefect_harness, mlflow_uri):
    from clusterflow.errors import InputError

    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.csv: the file is empty"):
        run_cli(["train", str(path), "--workspace", str(tmp_path / "ws"), "--debug"])


@pytest.mark.parametrize("case", _params(QUARANTINES))
def test_bad_row_is_quarantined_and_run_succeeds(case, tmp_path, prefect_harness, mlflow_uri):
    path = write_case(case, tmp_path)
    code, out, err = run_cli([*_train_args(case, path, tmp_path), "--json"])
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])

    n_rows = len(pd.read_csv(path, dtype=str, keep_default_na=False))
    assert summary["rows_in"] == n_rows
    assert summary["rows_quarantined"] == len(case.quarantined)
    assert summary["rows_clustered"] + summary["rows_quarantined"] == summary["rows_in"]
    assert summary["model_version"] is not None

    out = tmp_path / "out"
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert len(quarantine) == len(case.quarantined)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    for (row, words), (_, got) in zip(
        sorted(case.quarantined.items()), quarantine.iterrows(), strict=True
    ):
        assert words in got["reason"]
        # the row is reported as written in the file, not as parsed
        for column in raw.columns:
            assert got[column] == raw.loc[row, column], column
    assignments = pd.read_csv(out / "assignments.csv")
    assert len(assignments) == summary["rows_clustered"]
    if "--id-column" not in case.args:
        assert set(assignments["row"]) == set(range(n_rows)) - set(case.quarantined)


SUBPROCESS_CASES = ["header_only", "parquet_list_column", "text_column_missing"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_console_script_prints_no_traceback(name, tmp_path):
    case = next(c for c in CATALOGUE if c.name == name)
    path = write_case(case, tmp_path)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [str(CLI), *_train_args(case, path, tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    assert proc.returncode == case.error.exit_code
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and path.name in lines[0], proc.stderr
    assert proc.stdout.strip() == ""
