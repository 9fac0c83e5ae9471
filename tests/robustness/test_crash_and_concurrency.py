"""Crash and resume, and trainings at once on one tracking store.

SIGKILLs after each stage and inside each stage and inside registration (between version creation
and alias move, inside the alias move), each followed by a rerun: exactly one version per run that
moved an alias, no ``pending`` version left, no temporary left in the store. Two and three
trainings of different models at once, held so that all reach the gate against the same champion:
the champion at the end passed the gate against the champion it actually replaced.
"""

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
from tests.robustness.faults import KILL_POINTS

STAGES = ["ingest", "validate", "impute", "embed", "sweep"]
CLI = [sys.executable, "-m", "clusterflow_cli.main"]
ROOT = Path(__file__).resolve().parents[2]


def _train_args(data: Path, out: Path, workspace: Path, *extra: str) -> list[str]:
    return [
        "train",
        str(data),
        "--text-column",
        "remarks",
        "--id-column",
        "record_id",
        "--out",
        str(out),
        "--workspace",
        str(workspace),
        "--json",
        "--algorithms",
        "kmeans,gmm",
        "--k-max",
        "5",
        *extra,
    ]


def _train_cmd(data: Path, out: Path, workspace: Path, *extra: str) -> list[str]:
    return [*CLI, *_train_args(data, out, workspace, *extra)]


def _faulty_cmd(kill: str, barrier: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tests.robustness.faults", kill, barrier, "--", *args]


@pytest.fixture
def small_demo(tmp_path) -> Path:
    path = tmp_path / "demo.csv"
    pd.read_csv(bundled("birds_demo.csv")).head(250).to_csv(path, index=False)
    return path


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Each run starts (or finds) the workspace's kept Prefect server: the CLI allows it 600 s.
    env.pop("PREFECT_API_URL", None)
    return env


def _complete(workspace: Path, stage: str) -> bool:
    folder = workspace / "stages" / stage
    return folder.exists() and any((d / "_COMPLETE").exists() for d in folder.iterdir())


def _registry(tmp_path: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        found = client.search_model_versions("name='clusterflow'")
    except Exception:  # no registry tables yet: nothing registered
        return []
    # search results carry no aliases: read each version
    return [client.get_model_version("clusterflow", v.version) for v in found]


def _versions(tmp_path: Path) -> list[str]:
    return sorted(str(v.version) for v in _registry(tmp_path))


def _temporaries(workspace: Path) -> list[Path]:
    return [p for p in (workspace / "stages").glob("*/.*")]


def _gate_record(tmp_path: Path, run_id: str) -> dict:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="gate.json")
    return json.loads(Path(local).read_text())


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a killed run (900 s to reach its stage) and a rerun (900 s)
@pytest.mark.parametrize("stage", STAGES)
def test_killed_after_each_stage_resumes(tmp_path, small_demo, stage):
    workspace = tmp_path / "ws"
    env = _env(tmp_path)
    proc = subprocess.Popen(
        _train_cmd(small_demo, tmp_path / "first", workspace),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # The run may first start the workspace's Prefect server (allowed 600 s).
    deadline = time.monotonic() + 900
    # impute and embed run side by side: "after embed" means after it and every stage before it
    # in the list (with the forest candidate, auto imputation can finish after embedding)
    done = STAGES[: STAGES.index(stage) + 1]
    while not all(_complete(workspace, s) for s in done):
        assert proc.poll() is None, f"training ended before stage {stage} completed"
        assert time.monotonic() < deadline, f"stage {stage} not complete in 900 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the process group (the kept Prefect server survives)
    proc.wait()
    assert not (tmp_path / "first" / "summary.json").exists()
    # Nothing half-written is visible: every stage folder a later run may read is complete.
    for folder in (workspace / "stages").glob("*/[!.]*"):
        assert (folder / "_COMPLETE").exists(), f"incomplete stage output {folder}"
    before = _versions(tmp_path)

    rerun = subprocess.run(
        _train_cmd(small_demo, tmp_path / "second", workspace),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert set(STAGES[: STAGES.index(stage) + 1]) <= set(summary["stages_reused"])
    assert summary["rows_in"] == 250 == summary["rows_clustered"] + summary["rows_quarantined"]
    assert before == [] and _versions(tmp_path) == [summary["model_version"]]
    assert _temporaries(workspace) == []


@pytest.mark.slow
@pytest.mark.timeout(2400)  # two runs of up to 900 s each, and the setup
@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_inside_a_stage_or_registration_then_rerun(tmp_path, small_demo, point):
    workspace = tmp_path / "ws"
    env = _env(tmp_path)
    killed = subprocess.run(
        _faulty_cmd(point, "-", _train_args(small_demo, tmp_path / "first", workspace)),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        start_new_session=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "first" / "summary.json").exists()
    for folder in (workspace / "stages").glob("*/[!.]*"):
        assert (folder / "_COMPLETE").exists(), f"incomplete stage output {folder}"
    left_by_kill = len(_temporaries(workspace))
    after_kill = _registry(tmp_path)
    aliased_by_kill = [v for v in after_kill if v.aliases]

    rerun = subprocess.run(
        _train_cmd(small_demo, tmp_path / "second", workspace),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["rows_in"] == 250 == summary["rows_clustered"] + summary["rows_quarantined"]

    versions = _registry(tmp_path)
    # exactly one version per run that moved an alias: the rerun, and the killed run only when it
    # died after its alias moved
    assert len(versions) == 1 + len(aliased_by_kill)
    assert summary["model_version"] in {str(v.version) for v in versions}
    assert all(v.tags.get("clusterflow.state") == "complete" for v in versions), "orphan left"
    champion = [v for v in versions if "champion" in v.aliases]
    assert len(champion) == 1
    assert _temporaries(workspace) == []
    orphans = len(after_kill) - len(aliased_by_kill)
    print(
        f"FAULTS {point}: runs=2 versions_after_kill={len(after_kill)} "
        f"orphans_after_kill={orphans} versions_after_rerun={len(versions)} "
        f"pending_after_rerun=0 temporaries_after_kill={left_by_kill} "
        f"temporaries_after_rerun=0"
    )


def _check_promotion_chain(tmp_path: Path, summaries: list[dict]) -> list[dict]:
    """Every promotion was gated against the champion it replaced; return the gate records."""
    from mlflow import MlflowClient

    records = [_gate_record(tmp_path, s["mlflow_run_id"]) for s in summaries]
    promoted = {r["version"]: r["champion_version"] for r in records if r["promoted"]}
    # follow the promotions from "no champion": each replaced exactly the previous one
    current, seen = None, []
    while True:
        following = [v for v, replaced in promoted.items() if replaced == current]
        assert len(following) <= 1, f"two promotions replaced champion {current}: {following}"
        if not following:
            break
        current = following[0]
        seen.append(current)
    assert set(seen) == set(promoted), f"a promotion skipped the champion it replaced: {promoted}"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("clusterflow", "champion").version) == current
    return records


@pytest.mark.slow
@pytest.mark.timeout(2400)  # two or three text trainings at once on two cores
@pytest.mark.parametrize(
    "models",
    [
        [["--k-min", "2", "--k-max", "3"], ["--k-min", "5", "--k-max", "6", "--seed", "1"]],
        [
            ["--k-min", "2", "--k-max", "3"],
            ["--k-min", "5", "--k-max", "6", "--seed", "1"],
            ["--k-min", "3", "--k-max", "4", "--seed", "2"],
        ],
    ],
    ids=["two", "three"],
)
def test_trainings_at_once_gate_against_the_champion_they_replace(tmp_path, small_demo, models):
    env = _env(tmp_path)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            _faulty_cmd(
                "-",
                f"{barrier}:{len(models)}",
                _train_args(small_demo, tmp_path / f"run{i}", tmp_path / f"ws{i}", *extra),
            ),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i, extra in enumerate(models)
    ]
    outs = [p.communicate(timeout=2100) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    summaries = [json.loads(out) for out, _ in outs]
    assert len({s["k"] for s in summaries}) > 1  # different models, not one model n times
    assert sorted(s["model_version"] for s in summaries) == [
        str(i) for i in range(1, len(models) + 1)
    ]
    records = _check_promotion_chain(tmp_path, summaries)
    # all were gated against "no champion" first; all but the first to move an alias re-checked
    rechecked = [r for r in records if "re-checked" in r["reason"]]
    assert len(rechecked) == len(models) - 1
    assert all(r["outcome"] in {"better", "tie", "worse"} for r in rechecked)
    assert all(v.tags["clusterflow.state"] == "complete" for v in _registry(tmp_path))
    print(
        f"FAULTS concurrent {len(models)}: "
        + "; ".join(
            f"v{r['version']} k={s['k']} {r['outcome']} vs v{r['champion_version']} "
            f"promoted={r['promoted']}"
            for r, s in zip(records, summaries, strict=True)
        )
    )
