"""Issue 6: on a real Prefect server, a drifted batch seen by the monitoring flow emits
`clusterflow.drift.detected`, and the deployment trigger of prefect.yaml starts retraining on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from clusterflow_cli.stack import wait_http
from tests.conftest import ROOT
from tests.integration.conftest import free_port

pytestmark = pytest.mark.server
BIN = Path(sys.executable).parent


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


@pytest.fixture
def prefect_server(tmp_path):
    """`prefect server start` on a free port of 127.0.0.1, with its own PREFECT_HOME."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    log = tmp_path / "prefect-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 600, proc, log)
        yield env
    finally:
        _stop(proc)


def _flow_runs(api: str, deployment_id: str) -> list[dict]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()


def _deployment_id(api: str, flow: str, name: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(f"{api}/deployments/name/{flow}/{name}", timeout=30)
        if resp.status_code == 200:
            return resp.json()["id"]
        time.sleep(2)
    raise AssertionError(f"deployment {flow}/{name} was never created")


def _automation_names(api: str, wanted: str, timeout: float = 120) -> list[str]:
    """Return the server's automation names once ``wanted`` is among them (or at the deadline).

    Serving creates the deployment first, then deletes and re-creates its automations, so they
    can be missing for a moment after the deployment exists.
    """
    deadline = time.monotonic() + timeout
    while True:
        automations = httpx.post(f"{api}/automations/filter", json={}, timeout=30).json()
        names = [a["name"] for a in automations]
        if wanted in names or time.monotonic() > deadline:
            return names
        time.sleep(2)


@pytest.mark.timeout(1800)
def test_drift_event_triggers_retraining(prefect_server, tmp_path):
    env = {**prefect_server, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    api = env["PREFECT_API_URL"]
    ws = tmp_path / "ws"
    penguins = pd.read_csv(ROOT / "data" / "penguins.csv").dropna(subset=["body_mass_g"])
    train = penguins.sample(80, random_state=0)
    train.to_csv(tmp_path / "train.csv", index=False)
    drifted = penguins.drop(train.index).sample(60, random_state=1)
    drifted["body_mass_g"] += 2500  # heavy birds: an unmistakable column shift
    drifted["flipper_length_mm"] += 40
    drifted.to_csv(tmp_path / "drifted.csv", index=False)
    cheap = ["--algorithms", "kmeans", "--k-max", "4", "--impute", "median"]

    # 1. a champion of the dev model to monitor against
    first = subprocess.run(
        [str(BIN / "clusterflow"), "train", str(tmp_path / "train.csv"), "--workspace", str(ws)]
        + ["--exclude-columns", "species,year", "--model-name", "clusterflow-dev", *cheap]
        + ["--out", str(tmp_path / "first"), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-3000:]

    # 2. serve the dev deployments of prefect.yaml (trigger included), with cheap penguin settings
    overrides = {
        "training.text_column": "null",
        "training.id_column": "null",
        "training.exclude_columns": "[species, year]",
        "training.workspace": str(ws),
        "training.out_dir": str(tmp_path / "retrained"),
        "training.impute": "{method: median}",
        "training.sweep.k_max": "4",
        "monitoring.workspace": str(ws),
    }
    sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    serve_log = tmp_path / "serve.log"
    with open(serve_log, "wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "--env", "dev", "--no-schedules"]
            + ["--model-name", "clusterflow-dev", *sets],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        train_id = _deployment_id(api, "clusterflow-train", "dev")
        assert _flow_runs(api, train_id) == []
        # the automation created from the yaml trigger is on the server
        assert "clusterflow-dev retrain on drift" in _automation_names(
            api, "clusterflow-dev retrain on drift"
        )

        # 3. monitoring on the drifted batch emits the event (run from the CLI, reporting here)
        mon = subprocess.run(
            [str(BIN / "clusterflow"), "monitor", str(tmp_path / "drifted.csv")]
            + ["--model", "models:/clusterflow-dev@champion", "--workspace", str(ws)]
            + ["--out", str(tmp_path / "monitor"), "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert mon.returncode == 0, mon.stderr[-3000:]
        report = json.loads(mon.stdout.strip().splitlines()[-1])
        assert report["drift_detected"] is True
        assert {"body_mass_g", "flipper_length_mm"} <= set(report["drifted_columns"])

        # 4. the triggered training run: parameters templated from the event, then completed
        deadline, runs = time.monotonic() + 600, []
        while time.monotonic() < deadline:
            runs = _flow_runs(api, train_id)
            if runs and runs[0]["state_type"] in ("COMPLETED", "FAILED", "CRASHED"):
                break
            time.sleep(3)
        assert len(runs) == 1, runs
        run = runs[0]
        assert run["state_type"] == "COMPLETED", serve_log.read_text()[-3000:]
        assert run["parameters"]["config"]["data"] == str((tmp_path / "drifted.csv").resolve())
        summary = json.loads((tmp_path / "retrained" / "summary.json").read_text())
        assert summary["rows_in"] == 60
        assert str(summary["model_version"]) == "2"

        # 5. when serving stops, its automation goes too (a later drift would start a run of
        # the paused deployment that nothing serves)
        _stop(serve)
        assert serve.returncode == 0, serve_log.read_text()[-3000:]
        names = [
            a["name"] for a in httpx.post(f"{api}/automations/filter", json={}, timeout=30).json()
        ]
        assert "clusterflow-dev retrain on drift" not in names, serve_log.read_text()[-3000:]
    finally:
        _stop(serve)
