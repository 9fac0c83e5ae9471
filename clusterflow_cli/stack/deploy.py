"""The stack's deployments and its worker: the work pool, prefect.yaml resolved, one worker."""

from __future__ import annotations

import time
from pathlib import Path

from clusterflow_cli.stack.processes import _bin, _run, _start
from clusterflow_cli.stack.state import _Launch, _write_state
from clusterflow_orchestration.deployments import resolve

PREFECT_YAML = resolve.PREFECT_YAML
"""The deployments file ``up`` deploys by default (``deployments/prefect.yaml``)."""
WORK_POOL = "clusterflow-process"
FLOW_NAMES = ("clusterflow-train", "clusterflow-monitor", "clusterflow-score")
# `prefect deploy --name` matches "<entrypoint function, dashed>/<deployment name>"
DEPLOY_SELECTORS = ("training-flow", "monitoring-flow", "scoring-flow")


def _deploy(
    launch: _Launch, prefect_file: str | Path, env_name: str, model_name: str | None
) -> None:
    """Create the work pool and deploy the environment's deployments, resolved for the workdir."""
    t1 = time.monotonic()
    workdir, env, project_dir = launch.workdir, launch.env, launch.project_dir
    deploy_file = write_deploy_file(
        prefect_file, launch.home / "prefect.yaml", workdir=workdir, model_name=model_name
    )
    _run(
        [_bin("prefect"), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        env,
        project_dir,
    )
    names = [arg for flow in DEPLOY_SELECTORS for arg in ("--name", f"{flow}/{env_name}")]
    _run(
        [_bin("prefect"), "--no-prompt", "deploy", "--prefect-file", str(deploy_file), *names],
        env,
        project_dir,
    )
    launch.state["deployed"] = {
        "env": env_name,
        "deployments": [f"{flow}/{env_name}" for flow in FLOW_NAMES],
        "model_name": model_name,
        "workdir": str(workdir),
        "file": str(deploy_file),
    }
    _write_state(launch.workspace, launch.state)
    launch.step(
        f"deployed {', '.join(launch.state['deployed']['deployments'])} to pool {WORK_POOL} "
        f"(model {model_name or 'of prefect.yaml'}, runs in {workdir})",
        t1,
    )


def _start_worker(launch: _Launch) -> None:
    """Start a process worker on the pool; it runs the deployed flows in the workdir."""
    t2 = time.monotonic()
    _, wentry, _ = _start(
        "prefect-worker",
        [_bin("prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process"],
        launch.env,
        launch.workspace,
        launch.workdir,
        marker="worker",
    )
    launch.record(wentry)
    launch.step(f"worker started on pool {WORK_POOL} in {launch.workdir} (pid {wentry['pid']})", t2)


def write_deploy_file(
    prefect_file: str | Path,
    target: Path,
    *,
    workdir: Path,
    model_name: str | None,
) -> Path:
    """Write prefect.yaml resolved for ``workdir`` and ``model_name`` (see ``resolve_document``)."""
    import yaml

    document = yaml.safe_load(Path(prefect_file).read_text())
    resolved = resolve.resolve_document(document, workdir, model_name=model_name)
    target.write_text(
        "# Written by 'clusterflow up' from "
        f"{prefect_file}: paths resolved for {workdir}.\n"
        + yaml.safe_dump(resolved, sort_keys=False)
    )
    return target
