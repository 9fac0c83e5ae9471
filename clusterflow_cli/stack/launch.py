"""``up`` as its steps: check, prepare, servers, deploy, worker; on failure, stop what started."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clusterflow_cli.stack.deploy import PREFECT_YAML, _deploy, _start_worker
from clusterflow_cli.stack.processes import _alive, check_port_free, down
from clusterflow_cli.stack.servers import _start_servers
from clusterflow_cli.stack.state import ROOT, StackError, _Launch, read_state, stack_dir, stack_env
from clusterflow_orchestration.deployments.serve import DEFAULT_MODEL_NAME


def up(
    workspace: str | Path = ".clusterflow",
    *,
    env_name: str = "dev",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    worker: bool = True,
    deploy: bool = True,
    timeout: float = 600.0,
    prefect_file: str | Path = PREFECT_YAML,
    project_dir: str | Path = ROOT,
    workdir: str | Path | None = None,
    model_name: str | None = DEFAULT_MODEL_NAME,
    extra_env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Start the stack; return the recorded state. On failure, stop what was started.

    Parameters
    ----------
    workdir : path, optional
        Where the deployed runs execute and their relative paths resolve (default: the current
        folder); never the install folder.
    model_name : str, optional
        The registered model the deployments train, monitor and score, and the drift automation
        listens for (default: the one ``clusterflow train`` registers). None keeps prefect.yaml's.
    echo : callable
        Receives one line per step (server, MLflow, deployments, worker) with elapsed seconds.
    """
    started = time.monotonic()
    workspace = Path(workspace).resolve()
    workdir = Path(workdir or ".").resolve()
    if not workdir.is_dir():
        raise StackError(
            f"--workdir {workdir}: no such folder",
            hint="create it first, or point --workdir at the folder the deployed runs should use",
        )
    _check_can_start(workspace, prefect_port, mlflow_port)
    launch = _prepare(workspace, workdir, prefect_port, mlflow_port, extra_env, echo)
    launch.project_dir = Path(project_dir).resolve()  # where the prefect CLI runs
    try:
        _start_servers(launch, prefect_port, mlflow_port, timeout)
        if deploy:
            _deploy(launch, prefect_file, env_name, model_name)
        if worker:
            _start_worker(launch)
    except BaseException:
        down(workspace, echo=lambda _msg: None)
        raise
    launch.state["elapsed_s"] = round(time.monotonic() - started, 1)
    return launch.state


def _check_can_start(workspace: Path, prefect_port: int, mlflow_port: int) -> None:
    """Refuse a second stack in one workspace, and ports another process already answers."""
    existing = read_state(workspace)
    if any(_alive(p) for p in existing.get("processes", [])):
        raise StackError(
            f"a stack is already running for {workspace}", hint="run 'clusterflow down' first"
        )
    if prefect_port == mlflow_port:
        raise StackError(
            f"--prefect-port and --mlflow-port are both {prefect_port}",
            hint="give the two servers different ports",
        )
    # A server already answering on our ports would pass the health checks in our place.
    check_port_free(prefect_port, "Prefect")
    check_port_free(mlflow_port, "MLflow")


def _prepare(
    workspace: Path,
    workdir: Path,
    prefect_port: int,
    mlflow_port: int,
    extra_env: Mapping[str, str] | None,
    echo: Callable[[str], None],
) -> _Launch:
    """Create the stack's folders and its environment; return the empty recorded state."""
    home = stack_dir(workspace)
    (home / "prefect-home").mkdir(parents=True, exist_ok=True)
    (home / "mlartifacts").mkdir(exist_ok=True)
    env = stack_env(workspace, prefect_port, mlflow_port)
    env.update(extra_env or {})
    state: dict[str, Any] = {
        "workspace": str(workspace),
        "workdir": str(workdir),
        "env": {k: env[k] for k in ("PREFECT_API_URL", "PREFECT_UI_URL", "MLFLOW_TRACKING_URI")},
        "deployed": None,
        "processes": [],
    }
    return _Launch(workspace, workdir, env, state, echo)
