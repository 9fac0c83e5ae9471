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
from pathlib import Path
from typing import Any

import yaml

from clusterflow.config import RegistryConfig
from clusterflow.errors import ConfigError
from clusterflow_orchestration.deployments.resolve import (
    PREFECT_YAML,
    resolve_config,
    resolve_trigger,
)
from clusterflow_orchestration.deployments.specs import DeploymentSpec, load_specs

DEFAULT_MODEL_NAME: str = RegistryConfig.model_fields["model_name"].default

ROOT = PREFECT_YAML.parent.parent
"""Where prefect.yaml's entrypoints are relative to: the checkout, or the installed package."""
ENVIRONMENTS = ("dev", "prod")
ENTRYPOINT_PACKAGE = "clusterflow_orchestration"
"""The installed package whose modules mirror the entrypoint paths (``flows/training.py``)."""


def _merge(
    base: Mapping[str, Any], override: Mapping[str, Any], *, keep_templates: bool = False
) -> dict[str, Any]:
    """Deep-merge ``override`` into ``base``.

    With ``keep_templates``, a templated value of ``base`` (``{{ event.payload.data }}`` in a
    trigger) wins: ``--set training.data=my.csv`` sets the deployment's data, and retraining on
    drift must still read the batch that drifted.
    """
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value, keep_templates=keep_templates)
        elif not (keep_templates and isinstance(out.get(key), str) and "{{" in out[key]):
            out[key] = value
    return out


def _import_flow(entrypoint: str):
    """Import ``flows/training.py:training_flow`` from ``clusterflow_orchestration.flows.training``.

    The entrypoint's path names the checkout's file; the installed module of the same path
    inside :mod:`clusterflow_orchestration` holds the flow.
    """
    import importlib

    path, _, name = entrypoint.partition(":")
    module = ".".join((ENTRYPOINT_PACKAGE, *Path(path).with_suffix("").parts))
    return getattr(importlib.import_module(module), name)


def served_flows(
    specs: Sequence[DeploymentSpec],
    *,
    schedules: bool = True,
    triggers: bool = True,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    training_task_runner=None,
    workdir: str | Path | None = None,
    model_name: str | None = None,
) -> list[tuple[Any, dict[str, Any]]]:
    """Return ``(flow, deployment options)`` for each spec, ready for ``Runner.add_flow``.

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
    workdir : path, optional
        Resolve the parameters' relative paths against this folder (after the overrides), as
        :mod:`clusterflow_orchestration.deployments.resolve` does; None keeps them as written.
    model_name : str, optional
        Train, monitor and score this registered model; the drift trigger listens for it.
    """
    from clusterflow_orchestration.deployments.runners import training_flow_on

    overrides = overrides or {}
    built = []
    for spec in specs:
        flow = _import_flow(spec.entrypoint)
        if spec.kind == "training" and training_task_runner is not None:
            flow = training_flow_on(training_task_runner)
        extra = overrides.get(spec.kind, {})
        trigger_objects = (
            _served_triggers(spec, extra, workdir=workdir, model_name=model_name)
            if triggers
            else []
        )
        parameters = _merge(spec.parameters, extra)
        _check_config(spec, parameters)
        if workdir is not None and isinstance(parameters.get("config"), Mapping):
            parameters["config"] = resolve_config(
                parameters["config"], workdir, model_name=model_name
            )
        crons = _active_crons(spec) if schedules else []
        built.append((flow, _deployment_options(spec, parameters, crons, trigger_objects)))
    return built


def _served_triggers(
    spec: DeploymentSpec,
    extra: Mapping[str, Any],
    *,
    workdir: str | Path | None,
    model_name: str | None,
) -> list:
    """Return the spec's drift -> retrain triggers as Prefect objects, overridden and resolved.

    Parameters
    ----------
    spec : DeploymentSpec
        The deployment whose declared triggers are built.
    extra : mapping
        The overrides of the deployment's kind, merged into each trigger's parameters except
        where those are templates (the trigger retrains on the batch that drifted).
    workdir : path, optional
        Resolve the triggers' parameters against this folder (None: as written).
    model_name : str, optional
        The registered model the triggers listen for.

    Returns
    -------
    list of DeploymentEventTrigger
    """
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    trigger_objects = []
    for declared in spec.triggers:
        t = {k: v for k, v in declared.items() if k != "type"}
        t["parameters"] = _merge(t.get("parameters") or {}, extra, keep_templates=True)
        if workdir is not None:
            t = resolve_trigger(t, workdir, model_name=model_name)
        trigger_objects.append(DeploymentEventTrigger(**t))
    return trigger_objects


def _active_crons(spec: DeploymentSpec) -> list:
    """Return the spec's active cron schedules as Prefect ``Cron`` objects (UTC unless stated)."""
    from prefect.schedules import Cron

    return [
        Cron(s["cron"], timezone=s.get("timezone", "UTC"))
        for s in spec.schedules
        if s.get("active", True)
    ]


def _deployment_options(
    spec: DeploymentSpec, parameters: dict[str, Any], crons: list, trigger_objects: list
) -> dict[str, Any]:
    """Return the keyword arguments of ``flow.to_deployment`` for one served deployment."""
    from prefect.types.entrypoint import EntrypointType

    return {
        "name": spec.name,
        "parameters": parameters,
        "schedules": crons or None,
        "triggers": trigger_objects or None,
        "description": spec.description,
        "tags": list(spec.tags),
        "concurrency_limit": spec.concurrency_limit,
        # Runs import the flow from the installed package
        # (clusterflow_orchestration.flows.training...):
        # a file-path entrypoint made the served runs load the code from the
        # deployment's storage path, None when serving outside the checkout, and
        # crash: "Downloading flow code from storage at None ... '<cwd>/None'".
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }


def build_deployments(specs: Sequence[DeploymentSpec], **options) -> list:
    """Turn specs into Prefect ``RunnerDeployment`` objects (options: see :func:`served_flows`).

    The deployments are detached from any work pool: ``clusterflow up`` may have deployed the
    same names to its pool, whose worker would otherwise take their runs too.
    """
    built = []
    for flow, kwargs in served_flows(specs, **options):
        deployment = flow.to_deployment(**kwargs)
        # Set explicitly, so the update sent to the server clears a pool set by `prefect deploy`.
        deployment.work_pool_name = None
        built.append(deployment)
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
    workdir: str | Path | None = None,
    model_name: str | None = None,
    take_over: bool = False,
) -> None:
    """Serve the ``env`` deployments until interrupted (blocks).

    Relative paths of the parameters resolve against ``workdir`` (default: the current folder),
    where the served runs also execute. Deployments a running worker serves are refused unless
    ``take_over`` (see :func:`check_not_served_by_a_worker`). When serving stops, the drift
    automations it created are deleted (:func:`retire_triggers`).
    """
    from prefect import serve

    task_runner = None
    if dask_address:
        from clusterflow_orchestration.deployments.runners import task_runner_for

        task_runner = task_runner_for(dask_address)
    deployments = build_deployments(
        load_specs(prefect_file, env),
        schedules=schedules,
        triggers=triggers,
        overrides=overrides,
        training_task_runner=task_runner,
        workdir=Path(workdir or ".").resolve(),
        model_name=model_name,
    )
    if not take_over:
        check_not_served_by_a_worker(deployments)
    try:
        serve(*deployments, limit=limit)  # pauses them on Ctrl-C or SIGTERM
    except Exception:
        raise  # failed to start or to serve: nothing to retire; the error is the one line
    except BaseException:  # a signal or an exit stops serving (SIGTERM ends in SystemExit)
        if triggers:
            retire_triggers(deployments)
        raise
    if triggers:
        retire_triggers(deployments)


def retire_triggers(deployments: Sequence[Any]) -> None:
    """Delete the automations that serving created for ``deployments`` (their triggers).

    Prefect pauses served deployments when ``serve`` stops but keeps their automations, so a
    later drift event started a run of a paused deployment that stayed Late. Serving again (or
    ``clusterflow up``) creates them anew. Best effort: the server may be gone already.
    """
    from prefect.client.orchestration import get_client

    failed = []
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(name)
                client.delete_resource_owned_automations(f"prefect.deployment.{existing.id}")
            except Exception:  # noqa: BLE001 - a stopped server must not turn a stop into a crash
                failed.append(name)
    if failed:
        print(
            f"serve: could not remove the drift automations of {', '.join(failed)} (is the "
            "Prefect server still running?); disable them in the UI",
            file=sys.stderr,
        )


def check_not_served_by_a_worker(deployments: Sequence[Any]) -> None:
    """Refuse to serve deployments that a running worker already serves from a work pool.

    Serving takes a deployment of the same name over (it drops the work pool), and Prefect pauses
    it when ``serve`` stops: the stack of ``clusterflow up`` was left with paused deployments
    and a drift trigger pointing at one. Deployments on a pool without a worker (``up
    --no-worker``) are served, as documented.

    Raises
    ------
    ConfigError
        Naming the deployment, its pool and the ways out.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for deployment in deployments:
            full = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(full)
            except ObjectNotFound:
                continue
            pool = existing.work_pool_name
            workers = client.read_workers_for_work_pool(pool) if pool else []
            if any(str(w.status).upper().endswith("ONLINE") for w in workers):
                raise ConfigError(
                    f"deployment {full} is served by a worker on the work pool {pool!r}; "
                    "serving it here would take it over, and Prefect pauses it when serve stops",
                    hint="use the running worker, or pass --take-over (they stay paused, "
                    "without their drift trigger, after serve stops, until 'clusterflow up' "
                    "deploys them again)",
                )


CONFIG_MODELS = {"training": "TrainConfig", "monitoring": "MonitorConfig", "scoring": "ScoreConfig"}
"""The config model of each kind of deployment (in :mod:`clusterflow.config`)."""


def _check_config(spec: DeploymentSpec, parameters: Mapping[str, Any]) -> None:
    """Refuse a deployment whose config its flow would reject (a misspelt ``--set`` field).

    The server checks the parameters against the flow's schema only when a deployment is
    created, with a 409 that names neither the option nor the field; here it is one line.
    """
    from pydantic import ValidationError

    import clusterflow.config

    config = parameters.get("config")
    if spec.kind not in CONFIG_MODELS or not isinstance(config, Mapping):
        return
    try:
        getattr(clusterflow.config, CONFIG_MODELS[spec.kind]).model_validate(config)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join([spec.kind, *(str(p) for p in first["loc"])])
        raise ConfigError(
            f"deployment {spec.name}: {where}: {first['msg'].lower()}",
            hint="check the --set options (KIND.FIELD=VALUE) and the fields in 'clusterflow "
            "train --help'",
        ) from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``python -m deployments.serve`` and ``clusterflow serve``."""
    parser.add_argument(
        "--env", choices=ENVIRONMENTS, default="dev", help="parameter set (default: %(default)s)"
    )
    parser.add_argument(
        "--prefect-file",
        default=str(PREFECT_YAML),
        metavar="FILE",
        help=(
            "deployments file; its entrypoints must name clusterflow's own flows "
            "(flows/<module>.py:<flow>, loaded from clusterflow_orchestration)"
        ),
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
        "--model-name",
        default=DEFAULT_MODEL_NAME,
        metavar="NAME",
        help="train, monitor and score this registered model; the drift trigger listens for it "
        "(default: %(default)s, the model 'clusterflow train' and 'monitor' use)",
    )
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="serve deployments that a running worker already serves (e.g. those of 'clusterflow "
        "up'); Prefect leaves them paused when serve stops, until they are deployed again",
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
        model_name=args.model_name,
        take_over=args.take_over,
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
