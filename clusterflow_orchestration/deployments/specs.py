"""The deployments of ``prefect.yaml`` as plain data, for ``serve`` (the file is the one source)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clusterflow.errors import ConfigError
from clusterflow_orchestration.deployments.resolve import PREFECT_YAML


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of prefect.yaml, as plain data (the file is the single source)."""

    name: str
    entrypoint: str
    parameters: dict[str, Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    schedules: tuple[dict[str, Any], ...] = ()
    triggers: tuple[dict[str, Any], ...] = ()
    concurrency_limit: int | None = None
    work_pool: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``training``, ``monitoring`` or ``scoring`` (from the entrypoint's module)."""
        return Path(self.entrypoint.split(":", 1)[0]).stem


def load_specs(path: str | Path = PREFECT_YAML, env: str | None = None) -> list[DeploymentSpec]:
    """Read the deployments of ``path``; keep those named ``env`` when given.

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or has no deployment named ``env``.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {path}: {err}", hint="pass a valid prefect.yaml") from err
    specs = [
        DeploymentSpec(
            name=d["name"],
            entrypoint=d["entrypoint"],
            parameters=dict(d.get("parameters") or {}),
            description=d.get("description", ""),
            tags=tuple(d.get("tags") or ()),
            schedules=tuple(d.get("schedules") or ()),
            triggers=tuple(d.get("triggers") or ()),
            concurrency_limit=d.get("concurrency_limit"),
            work_pool=dict(d.get("work_pool") or {}),
        )
        for d in document.get("deployments") or []
    ]
    if env is not None:
        specs = [s for s in specs if s.name == env]
        if not specs:
            raise ConfigError(
                f"{path} has no deployments named {env!r}",
                hint=f"use one of {sorted({d['name'] for d in document['deployments']})}",
            )
    return specs
