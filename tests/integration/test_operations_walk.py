"""Issue 13: the documented operations path, end to end, as a user runs it from their own folder.

`clusterflow up` -> `clusterflow train --json` through the stack -> `clusterflow serve` then
`prefect deployment run` -> `clusterflow monitor` on a drifted batch -> the automation retrains ->
a new model version -> `clusterflow down`, nothing left running. Free ports throughout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient

from clusterflow_cli import stack
from tests.conftest import ROOT
from tests.integration.conftest import free_port
from tests.integration.test_drift_retrain import _flow_runs, _stop

pytestmark = pytest.mark.server
BIN = Path(sys.executable).parent
CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("PREFECT_API_URL", "PREFECT_UI_URL", "MLFLOW_TRACKING_URI", "PREFECT_HOME")
}


def _cli(args, env, cwd, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "clusterflow"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _checkout_outputs() -> set[str]:
    """What runs would write into the checkout: workspace, default outputs, MLflow's mlruns."""
    found = set()
    for name in (".clusterflow", "clusterflow-runs", "mlruns"):
        folder = ROOT / name
        if folder.exists():
            found |= {f"{name}/{p.name}" for p in folder.iterdir()} | {name}
    return found


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(2400)
def test_documented_operations_path(tmp_path):
    work = tmp_path / "work"  # the user's folder: nothing may be written to the checkout
    work.mkdir()
    ws = work / ".clusterflow"
    penguins = pd.read_csv(ROOT / "data" / "penguins.csv").dropna(subset=["body_mass_g"])
    train = penguins.sample(80, random_state=0)
    train.to_csv(work / "train.csv", index=False)
    drifted = penguins.drop(train.index).sample(60, random_state=1)
    drifted["body_mass_g"] += 2500
    drifted["flipper_length_mm"] += 40
    drifted.to_csv(work / "drifted.csv", index=False)
    prefect_port, mlflow_port = free_port(), free_port()
    before = _checkout_outputs()

    # 1. up: one line per step with elapsed seconds
    up = _cli(
        ["up", "--workspace", str(ws), "--prefect-port", str(prefect_port)]
        + ["--mlflow-port", str(mlflow_port)],
        CLEAN_ENV,
        work,
    )
    state = stack.read_state(ws)
    serve = None
    try:
        assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
        for step in ("Prefect server ready", "MLflow server ready", "deployed", "worker started"):
            assert re.search(rf"{step} .*\(\d+ s\)", up.stdout), up.stdout
        env = {**CLEAN_ENV, **state["env"]}
        api, ui, tracking = (
            state["env"][k] for k in ("PREFECT_API_URL", "PREFECT_UI_URL", "MLFLOW_TRACKING_URI")
        )
        deployment = httpx.get(f"{api}/deployments/name/clusterflow-train/dev", timeout=30).json()
        # item 5: resolved at deploy time for the user's folder, not the install folder
        assert deployment["parameters"]["config"]["workspace"] == str(ws)
        assert deployment["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(work)}}
        ]
        assert deployment["parameters"]["config"]["registry"]["model_name"] == "clusterflow"

        # 2. train through the stack; item 1: stdout is the JSON object alone
        cheap = ["--algorithms", "kmeans", "--k-max", "4", "--impute", "median"]
        first = _cli(
            ["train", "train.csv", "--exclude-columns", "species,year", "--workspace", str(ws)]
            + [*cheap, "--out", "first", "--json"],
            env,
            work,
        )
        assert first.returncode == 0, first.stderr[-3000:]
        summary = json.loads(first.stdout)
        assert summary["model_version"] == "1" and summary["tracking_uri"] == tracking
        # item 6: the run ends with the stack's links (on stderr under --json)
        flow_run_id = re.search(rf"{re.escape(ui)}/runs/flow-run/([0-9a-f-]+)", first.stderr)[1]
        experiment = re.search(
            rf"{re.escape(tracking)}/#/experiments/(\d+)/runs/{summary['mlflow_run_id']}",
            first.stderr,
        )[1]
        assert f"{tracking}/#/models/clusterflow/versions/1" in first.stderr
        assert "mlflow ui" not in first.stderr and "prefect server start" not in first.stderr
        flow_run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=30).json()
        client = MlflowClient(tracking_uri=tracking)
        run = client.get_run(summary["mlflow_run_id"])
        assert run.info.experiment_id == experiment
        assert run.info.run_name == flow_run["name"]  # item 8

        # 3. serve (the worker of `up` still running), then `prefect deployment run`
        overrides = {
            "training.data": "train.csv",
            "training.text_column": "null",
            "training.id_column": "null",
            "training.exclude_columns": "[species, year]",
            "training.impute": "{method: median}",
            "training.sweep.k_max": "4",
        }
        sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
        serve_log = tmp_path / "serve.log"
        with open(serve_log, "wb") as out:
            serve = subprocess.Popen(
                [str(BIN / "clusterflow"), "serve", "--env", "dev", "--no-schedules", "--take-over"]
                + sets,
                env=env,
                cwd=work,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def served():
            d = httpx.get(f"{api}/deployments/name/clusterflow-train/dev", timeout=30).json()
            return d["work_pool_name"] is None and d["parameters"]["config"]["data"].endswith(
                "train.csv"
            )

        _wait(served, 300, "serve to apply its deployments")
        done = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "clusterflow-train/dev"]
            + ["--watch", "--watch-timeout", "900"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=1000,
        )
        assert done.returncode == 0, (done.stdout[-1500:], serve_log.read_text()[-3000:])
        assert "Completed" in done.stdout + done.stderr, serve_log.read_text()[-3000:]
        versions = client.search_model_versions("name='clusterflow'")
        assert len(versions) == 2

        # 4. monitor a drifted batch: it says which automation reacts, and that one retrains
        monitor = _cli(
            ["monitor", "drifted.csv", "--workspace", str(ws), "--out", "monitor"], env, work
        )
        assert monitor.returncode == 0, monitor.stderr[-3000:]
        assert "DRIFT DETECTED" in monitor.stdout
        assert "automation 'clusterflow retrain on drift' will start retraining" in monitor.stdout
        train_id = deployment["id"]

        def retrained():
            runs = [
                r
                for r in _flow_runs(api, train_id)
                if r["parameters"]["config"]["data"] == str(work / "drifted.csv")
            ]
            final = ("COMPLETED", "FAILED", "CRASHED")
            return runs if runs and runs[0]["state_type"] in final else None

        (triggered,) = _wait(retrained, 900, "the retrain started by the automation")
        assert triggered["state_type"] == "COMPLETED", serve_log.read_text()[-3000:]
        assert len(client.search_model_versions("name='clusterflow'")) == 3
        # item 9: the drift report files are readable like any file the user writes
        modes = {p.name: p.stat().st_mode & 0o777 for p in (work / "monitor").iterdir()}
        assert modes["drift.json"] == modes["drift_report.html"]
        # item 5: every run wrote to the user's folder, none to the checkout
        assert _checkout_outputs() == before
        assert len(list((work / "clusterflow-runs").iterdir())) == 2  # the two deployment runs
    finally:
        if serve is not None:
            _stop(serve)
        down = _cli(["down", "--workspace", str(ws)], CLEAN_ENV, work, timeout=120)
        assert down.returncode == 0, down.stderr
    assert not [p["name"] for p in state.get("processes", []) if stack._alive(p)]
    assert not (ws / "stack" / "stack.json").exists()
