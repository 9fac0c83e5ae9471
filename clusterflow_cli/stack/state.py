"""The stack's folder, its state file and the environment its processes share.

Every process ``up`` starts is recorded (pid, command, log file) in ``<workspace>/stack/stack.json``
as soon as it starts, so ``down`` can stop exactly those process groups even after a failed ``up``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusterflow.errors import ClusterflowError

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


class StackError(ClusterflowError):
    """A server of the local stack did not start, or the stack is in an unexpected state."""


def stack_dir(workspace: str | Path) -> Path:
    """Folder holding the stack's pid file, logs, databases and artifacts."""
    return Path(workspace).resolve() / "stack"


def _state_file(workspace: str | Path) -> Path:
    return stack_dir(workspace) / "stack.json"


def read_state(workspace: str | Path) -> dict:
    """Return the recorded stack (``{"processes": [...], "env": {...}}``), empty when none."""
    path = _state_file(workspace)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def _write_state(workspace: str | Path, state: dict) -> None:
    path = _state_file(workspace)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def stack_env(
    workspace: str | Path,
    prefect_port: int,
    mlflow_port: int,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment of the stack's processes (and what a client exports to use the stack)."""
    env = dict(os.environ if base is None else base)
    home = stack_dir(workspace)
    env.update(
        PREFECT_HOME=str(home / "prefect-home"),
        PREFECT_API_URL=f"http://{HOST}:{prefect_port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_URL=f"http://{HOST}:{prefect_port}",
        MLFLOW_TRACKING_URI=f"http://{HOST}:{mlflow_port}",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


@dataclass
class _Launch:
    """What the steps of :func:`up` share; every process started is recorded at once."""

    workspace: Path
    workdir: Path
    env: dict[str, str]
    state: dict[str, Any]
    echo: Callable[[str], None]
    project_dir: Path = ROOT

    @property
    def home(self) -> Path:
        return stack_dir(self.workspace)

    def record(self, entry: dict) -> None:
        """Record a started process in the state file: ``down`` stops it if a later step fails."""
        self.state["processes"].append(entry)
        _write_state(self.workspace, self.state)

    def step(self, what: str, since: float) -> None:
        """Report a finished step with the seconds since ``since``."""
        self.echo(f"  {what} ({time.monotonic() - since:.0f} s)")
