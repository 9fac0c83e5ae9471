"""``clusterflow up | down | status | serve``: what each prints and its exit status."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping

from clusterflow.errors import ConfigError
from clusterflow_cli.stack.launch import up
from clusterflow_cli.stack.processes import _alive, down, port_in_use, port_owner
from clusterflow_cli.stack.state import read_state, stack_dir


def cmd_up(args: argparse.Namespace) -> int:
    """``clusterflow up``."""
    state = up(
        args.workspace,
        env_name=args.env,
        prefect_port=args.prefect_port,
        mlflow_port=args.mlflow_port,
        worker=not args.no_worker,
        deploy=not args.no_deploy,
        timeout=args.timeout,
        workdir=args.workdir,
        model_name=args.model_name,
    )
    for line in up_next_steps(state):
        print(line)
    return 0


def up_next_steps(state: Mapping) -> list[str]:
    """Return what to do with a stack that is up: the exports, the UIs, a run that will work."""
    urls = state["env"]
    lines = [f"clusterflow stack is up in {state.get('elapsed_s', 0):.0f} s. In this shell:"]
    lines += [f"  export {key}={value}" for key, value in urls.items()]
    lines.append(
        f"  Prefect UI: {urls['PREFECT_UI_URL']}   MLflow UI: {urls['MLFLOW_TRACKING_URI']}"
    )
    deployed = state.get("deployed")
    worker = any(p["name"] == "prefect-worker" for p in state["processes"])
    if deployed and worker:
        lines.append(
            f"  run: prefect deployment run clusterflow-train/{deployed['env']} --watch"
            f"   (runs in {deployed['workdir']}, model {deployed['model_name']})"
        )
    elif deployed:
        lines.append(
            f"  no worker: 'clusterflow serve --env {deployed['env']}' runs the deployments "
            "from one process, then: prefect deployment run "
            f"clusterflow-train/{deployed['env']} --watch"
        )
    else:
        lines.append("  nothing deployed (--no-deploy): clusterflow train DATA reports to it")
    lines.append("  stop: clusterflow down")
    return lines


def cmd_down(args: argparse.Namespace) -> int:
    """``clusterflow down``."""
    if not down(args.workspace):
        print(f"no running stack recorded under {stack_dir(args.workspace)}")
    return 0


SERVER_URL_KEYS = {"prefect-server": "PREFECT_API_URL", "mlflow-server": "MLFLOW_TRACKING_URI"}


def process_status(entry: Mapping, urls: Mapping[str, str]) -> str:
    """Return ``running`` or ``stopped``; for a server, also whether another has its port."""
    if not _alive(entry):
        return "stopped"
    key = SERVER_URL_KEYS.get(entry["name"])
    if key is None or key not in urls:
        return "running"
    from urllib.parse import urlsplit

    port = urlsplit(urls[key]).port
    owner = port_owner(port) if port else None
    if owner is None:
        return f"running, not listening on {port}" if port and not port_in_use(port) else "running"
    try:
        ours = os.getsid(owner[0]) == entry["pid"]
    except OSError:
        ours = False
    return "running" if ours else f"running, but port {port} is served by pid {owner[0]}"


def cmd_status(args: argparse.Namespace) -> int:
    """``clusterflow status``."""
    state = read_state(args.workspace)
    if not state:
        print(f"no stack recorded under {stack_dir(args.workspace)}")
        return 1
    for entry in state["processes"]:
        running = process_status(entry, state["env"])
        print(f"{entry['name']:16} pid {entry['pid']:>7}  {running}  log {entry['log']}")
    for key, value in state["env"].items():
        print(f"{key}={value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``clusterflow serve``."""
    from clusterflow_cli.server import running_local_api, use_stack_registry
    from clusterflow_orchestration.deployments.serve import run

    use_stack_registry(args.workspace)  # the served runs register where train and score look
    if not os.environ.get("PREFECT_API_URL"):
        stack_env = running_local_api(args.workspace)  # as train and monitor find it
        if stack_env is None:
            raise ConfigError(
                "clusterflow serve needs a Prefect server",
                hint="set PREFECT_API_URL, or start one with 'clusterflow up --no-worker' or "
                "'prefect server start'",
            )
        os.environ["PREFECT_API_URL"] = stack_env["PREFECT_API_URL"]
    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "serve": cmd_serve,
}
