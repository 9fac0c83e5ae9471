"""Which Prefect API a command reports to: never a temporary server per command.

In order:

1. a Prefect API that is configured (``PREFECT_API_URL``, or a Prefect profile): used as is;
2. the local stack that ``clusterflow up`` recorded under the workspace, if its server runs
   (its MLflow server too, unless ``MLFLOW_TRACKING_URI`` is set);
3. otherwise one local Prefect server is started in the background, recorded in the same place
   as the stack (``<workspace>/stack/stack.json``), said on screen, and left running for the next
   commands; ``clusterflow down`` stops it.

Starting Prefect's temporary server on every command cost about 10 s per command; a running
server costs nothing to reuse.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from clusterflow_cli import stack


def configured_api() -> str | None:
    """Return the Prefect API URL from the environment or the active profile, else None."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((stack.HOST, 0))
        return s.getsockname()[1]


def _live_server_env(workspace: str | Path, name: str, key: str) -> dict | None:
    """Return the recorded env if server ``name`` runs under ``workspace`` and ``key`` is set."""
    state = stack.read_state(workspace)
    servers = [p for p in state.get("processes", []) if p.get("name") == name]
    if servers and all(stack._alive(p) for p in servers) and state.get("env", {}).get(key):
        return state["env"]
    return None


def running_local_api(workspace: str | Path) -> dict | None:
    """Return the recorded env of a live local Prefect server under ``workspace``, or None."""
    return _live_server_env(workspace, "prefect-server", "PREFECT_API_URL")


def start_kept_server(
    workspace: str | Path, *, timeout: float = 600.0, echo: Callable[[str], None]
) -> dict:
    """Start a local Prefect server in the background, record it for ``down``; return its env."""
    workspace = Path(workspace).resolve()
    home = stack.stack_dir(workspace)
    (home / "prefect-home").mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = stack.stack_env(workspace, port, 0)
    env.pop("MLFLOW_TRACKING_URI")
    echo(
        f"clusterflow: starting a local Prefect server on http://{stack.HOST}:{port} "
        "(once; it keeps running for the next commands, stop it with 'clusterflow down')"
    )
    proc, entry, log = stack._start(
        "prefect-server",
        [stack._bin("prefect"), "server", "start", "--host", stack.HOST, "--port", str(port)],
        env,
        workspace,
        Path.cwd(),
        marker="server",
    )
    state = {
        "workspace": str(workspace),
        "env": {k: env[k] for k in ("PREFECT_API_URL", "PREFECT_UI_URL")},
        "processes": [entry],
        "kept_by": "clusterflow train",
    }
    stack._write_state(workspace, state)
    try:  # the port was free when picked; make sure no other server took it meanwhile
        stack.wait_ours(f"{env['PREFECT_API_URL']}/health", port, timeout, proc, log)
    except BaseException:
        stack.down(workspace, echo=lambda _msg: None)
        raise
    return state["env"]


def use_stack_registry(workspace: str | Path) -> str | None:
    """Make the MLflow server of a running ``clusterflow up`` stack the default registry.

    Every command that reads or writes the registry (``train``, ``score``, ``monitor``) calls
    this first, so that they agree on one registry: a set ``MLFLOW_TRACKING_URI`` wins; else the
    stack's MLflow server when it runs; else the SQLite file under the workspace. Returns the
    URI set, or None.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    env = _live_server_env(workspace, "mlflow-server", "MLFLOW_TRACKING_URI")
    if env is None:
        return None
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    return env["MLFLOW_TRACKING_URI"]


@contextmanager
def prefect_api(workspace: str | Path, *, echo: Callable[[str], None]) -> Iterator[str]:
    """Report to a running Prefect API inside the block (see the module doc); yield its URL."""
    url = configured_api()
    if url:
        yield url
        return
    env = running_local_api(workspace)
    if env is None:
        import fcntl

        # two commands started at once must not both start a server (one would leak)
        lock_path = stack.stack_dir(workspace) / "start.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                env = running_local_api(workspace) or start_kept_server(workspace, echo=echo)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    updates = {PREFECT_API_URL: env["PREFECT_API_URL"]}
    if env.get("PREFECT_UI_URL"):
        updates[PREFECT_UI_URL] = env["PREFECT_UI_URL"]
    with temporary_settings(updates=updates):
        yield env["PREFECT_API_URL"]
