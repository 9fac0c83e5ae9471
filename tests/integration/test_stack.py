"""Issue 7: `clusterflow up` stack (Prefect server + worker + MLflow server), deploy from
prefect.yaml, run the training deployment, find the new model version in the MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clusterflow_cli import stack
from tests.integration.conftest import cheap_train_config, free_port

pytestmark = pytest.mark.server


@pytest.fixture
def local_stack(tmp_path):
    """`clusterflow up` on free ports, always followed by `clusterflow down`."""
    workspace = tmp_path / "ws"
    state = stack.up(  # on failure, up() stops what it started before raising
        workspace,
        env_name="dev",
        prefect_port=free_port(),
        mlflow_port=free_port(),
        timeout=600,
        echo=lambda _msg: None,
    )
    try:
        yield workspace, state
    finally:
        stopped = stack.down(workspace, echo=lambda _msg: None)
        assert sorted(stopped) == sorted(p["name"] for p in state["processes"])
        assert not [p["name"] for p in state["processes"] if stack._alive(p)]
        assert not (workspace / "stack" / "stack.json").exists()


@pytest.mark.timeout(1800)  # the fixture's up (600 s) and deploy, the run (700 s), down
def test_up_deploy_run_registers_in_mlflow_server(local_stack, tiny_penguins, tmp_path):
    workspace, state = local_stack
    env = {**os.environ, **state["env"]}
    names = [p["name"] for p in state["processes"]]
    assert names == ["prefect-server", "mlflow-server", "prefect-worker"]

    params = {
        "config": cheap_train_config(
            tiny_penguins, workspace, tmp_path / "out", model_name="cf-stack-test"
        )
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    done = subprocess.run(
        [
            prefect,
            "deployment",
            "run",
            "clusterflow-train/dev",
            "--params",
            json.dumps(params),
            "--watch",
            "--watch-timeout",
            "600",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=700,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "Completed" in done.stdout + done.stderr

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows_in"] == 60
    assert summary["rows_clustered"] + summary["rows_quarantined"] == 60

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=state["env"]["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name='cf-stack-test'")
    assert [v.version for v in versions] == ["1"]
    assert summary["model_version"] in (1, "1")
    assert client.get_model_version_by_alias("cf-stack-test", "champion").version == "1"
    # the artifacts went through the tracking server to the stack's artifact folder on disk
    assert any((workspace / "stack" / "mlartifacts").rglob("*"))
