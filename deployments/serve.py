"""Serve the deployments of ``deployments/prefect.yaml`` from one process, without a work pool.

    python -m deployments.serve --env dev           # or: clusterflow serve --env dev

The same file drives ``prefect deploy`` (work pool) and this single-machine mode, so schedules,
parameter sets and the drift -> retrain trigger are defined once. Runs execute as subprocesses
of this server process; stop it with Ctrl-C (served deployments are paused on shutdown).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clusterflow.errors import ConfigError

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")
ROOT = PREFECT_YAML.parent.parent
ENVIRONMENTS = ("dev", "prod")


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


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_deployments(
    specs: Sequence[DeploymentSpec],
    *,
    schedules: bool = True,
    triggers: bool = True,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    training_task_runner=None,
) -> list:
    """Turn specs into Prefect ``RunnerDeployment`` objects ready for :func:`prefect.serve`.

    Parameters
    ----------
    specs : sequence of DeploymentSpec
    schedules, triggers : bool, default=True
        Keep the cron schedules / the drift -> retrain trigger.
    overrides : mapping, optional
        ``{kind: {"config": {...}}}`` deep-merged into the parameters of the deployments of that
        kind (``training``, ``monitoring``, ``scoring``) and of the training trigger.
    training_task_runner : prefect TaskRunner, optional
        Run the training flow's tasks on this runner (e.g. a Dask cluster).
    """
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    from deployments.runners import training_flow_on

    overrides = overrides or {}
    built = []
    for spec in specs:
        flow = load_flow_from_entrypoint(str(ROOT / spec.entrypoint))
        if spec.kind == "training" and training_task_runner is not None:
            flow = training_flow_on(training_task_runner)
        extra = overrides.get(spec.kind, {})
        trigger_objects = []
        if triggers:
            for t in spec.triggers:
                t = {k: v for k, v in t.items() if k != "type"}
                t["parameters"] = _merge(t.get("parameters") or {}, extra)
                trigger_objects.append(DeploymentEventTrigger(**t))
        crons = [
            Cron(s["cron"], timezone=s.get("timezone", "UTC"))
            for s in spec.schedules
            if schedules and s.get("active", True)
        ]
        built.append(
            flow.to_deployment(
                name=spec.name,
                parameters=_merge(spec.parameters, extra),
                schedules=crons or None,
                triggers=trigger_objects or None,
                description=spec.description,
                tags=list(spec.tags),
                concurrency_limit=spec.concurrency_limit,
            )
        )
    return built


def serve_deployments(
    env: str = "dev",
    *,
    prefect_file: str | Path = PREFECT_YAML,
    schedules: bool = True,
    triggers: bool = True,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    dask_address: str | None = None,
    limit: int | None = None,
) -> None:
    """Serve the ``env`` deployments until interrupted (blocks)."""
    from prefect import serve

    runner = None
    if dask_address:
        from deployments.runners import task_runner_for

        runner = task_runner_for(dask_address)
    deployments = build_deployments(
        load_specs(prefect_file, env),
        schedules=schedules,
        triggers=triggers,
        overrides=overrides,
        training_task_runner=runner,
    )
    serve(*deployments, limit=limit)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``python -m deployments.serve`` and ``clusterflow serve``."""
    parser.add_argument(
        "--env", choices=ENVIRONMENTS, default="dev", help="parameter set (default: %(default)s)"
    )
    parser.add_argument(
        "--prefect-file", default=str(PREFECT_YAML), metavar="FILE", help="deployments file"
    )
    parser.add_argument("--no-schedules", action="store_true", help="serve without cron schedules")
    parser.add_argument(
        "--no-trigger", action="store_true", help="do not retrain on clusterflow.drift.detected"
    )
    parser.add_argument(
        "--dask-address",
        metavar="ADDR",
        help="run training tasks on this Dask scheduler ('local' / 'local:N': a LocalCluster "
        "of N workers)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="concurrent flow runs at most"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KIND.FIELD=VALUE",
        help="override a config field, e.g. training.data=new.csv or training.sweep.k_max=4 "
        "(VALUE is parsed as YAML)",
    )


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["training.sweep.k_max=4"]`` -> ``{"training": {"config": {"sweep": {"k_max": 4}}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2:
            raise ConfigError(
                f"bad override {item!r}", hint="write KIND.FIELD=VALUE, e.g. training.data=x.csv"
            )
        node = out.setdefault(parts[0], {}).setdefault("config", {})
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def run(args: argparse.Namespace) -> int:
    """Serve with parsed arguments; return the exit code."""
    serve_deployments(
        args.env,
        prefect_file=args.prefect_file,
        schedules=not args.no_schedules,
        triggers=not args.no_trigger,
        overrides=parse_overrides(args.overrides),
        dask_address=args.dask_address,
        limit=args.limit,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m deployments.serve``."""
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConfigError as err:
        print(f"serve: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
