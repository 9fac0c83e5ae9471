"""Crash and resume (SIGKILL after each stage) and two trainings at once on one tracking store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import bundled

STAGES = ["ingest", "validate", "impute", "embed", "sweep"]
CLI = [sys.executable, "-m", "clusterflow_cli.main"]


def _train_cmd(data: Path, out: Path, workspace: Path) -> list[str]:
    return [*CLI, "train", str(data), "--text-column", "remarks", "--id-column", "record_id",
            "--out", str(out), "--workspace", str(workspace), "--json",
            "--algorithms", "kmeans,gmm", "--k-max", "5"]


@pytest.fixture
def small_demo(tmp_path) -> Path:
    path = tmp_path / "demo.csv"
    pd.read_csv(bundled("birds_demo.csv")).head(250).to_csv(path, index=False)
    return path


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env.pop("PREFECT_API_URL", None)
    return env


def _complete(workspace: Path, stage: str) -> bool:
    folder = workspace / "stages" / stage
    return folder.exists() and any((d / "_COMPLETE").exists() for d in folder.iterdir())


def _versions(tmp_path: Path) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        return sorted(v.version for v in client.search_model_versions("name='clusterflow'"))
    except Exception:  # no registry tables yet: nothing registered
        return []


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_killed_after_each_stage_resumes(tmp_path, small_demo, stage):
    workspace = tmp_path / "ws"
    env = _env(tmp_path)
    proc = subprocess.Popen(_train_cmd(small_demo, tmp_path / "first", workspace), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while not _complete(workspace, stage):
        assert proc.poll() is None, f"training ended before stage {stage} completed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the process and its temporary Prefect server
    proc.wait()
    assert not (tmp_path / "first" / "summary.json").exists()
    # Nothing half-written is visible: every stage folder a later run may read is complete.
    for folder in (workspace / "stages").glob("*/*"):
        if not folder.name.startswith("."):
            assert (folder / "_COMPLETE").exists(), f"incomplete stage output {folder}"
    before = _versions(tmp_path)

    rerun = subprocess.run(_train_cmd(small_demo, tmp_path / "second", workspace), env=env,
                           capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert set(STAGES[: STAGES.index(stage) + 1]) <= set(summary["stages_reused"])
    assert summary["rows_in"] == 250 == summary["rows_clustered"] + summary["rows_quarantined"]
    assert len(_versions(tmp_path)) == len(before) + 1


@pytest.mark.slow
def test_two_trainings_at_once(tmp_path, small_demo):
    env = _env(tmp_path)
    procs = [
        subprocess.Popen(_train_cmd(small_demo, tmp_path / f"run{i}", tmp_path / f"ws{i}"),
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in (1, 2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    summaries = [json.loads(out) for out, _ in outs]
    assert sorted(s["model_version"] for s in summaries) == ["1", "2"]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("clusterflow", "champion")
    passed = {s["model_version"] for s in summaries if s["promoted"]}
    assert str(champion.version) in passed
