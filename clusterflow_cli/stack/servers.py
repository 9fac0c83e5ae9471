"""The stack's two servers: Prefect and MLflow, started side by side and checked to be ours."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from clusterflow_cli.stack.processes import _answered_by_us, _bin, _start, port_owner, wait_http
from clusterflow_cli.stack.state import HOST, StackError, _Launch


def _start_servers(launch: _Launch, prefect_port: int, mlflow_port: int, timeout: float) -> None:
    """Start the Prefect and MLflow servers side by side, then wait until each is ours and up."""
    t0 = time.monotonic()
    home, env = launch.home, launch.env
    proc, entry, log = _start(
        "prefect-server",
        [_bin("prefect"), "server", "start", "--host", HOST, "--port", str(prefect_port)],
        env,
        launch.workspace,
        launch.project_dir,
        marker="server",
    )
    launch.record(entry)
    mproc, mentry, mlog = _start(
        "mlflow-server",
        _mlflow_server_cmd(home, mlflow_port),
        env,
        launch.workspace,
        launch.project_dir,
        marker="server",
    )
    launch.record(mentry)
    launch.echo(f"starting the clusterflow stack (logs in {home})")
    wait_ours(f"http://{HOST}:{prefect_port}/api/health", prefect_port, timeout, proc, log)
    launch.step(f"Prefect server ready at {env['PREFECT_UI_URL']} (pid {proc.pid})", t0)
    wait_ours(f"http://{HOST}:{mlflow_port}/health", mlflow_port, timeout, mproc, mlog)
    launch.step(f"MLflow server ready at {env['MLFLOW_TRACKING_URI']} (pid {mproc.pid})", t0)


def _mlflow_server_cmd(home: Path, port: int) -> list[str]:
    """Return the MLflow server command: SQLite store and artifacts under ``home``, one worker."""
    return [
        _bin("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination",
        str(home / "mlartifacts"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def wait_ours(url: str, port: int, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    """Wait for ``url``, then make sure it is our process that answered, not a squatter."""
    wait_http(url, timeout, proc, log)
    if not _answered_by_us(port, proc):
        owner = port_owner(port)
        raise StackError(
            f"port {port} is answered by pid {owner[0] if owner else '?'}, not by the server "
            f"this stack started",
            hint=f"see {log}",
        )
