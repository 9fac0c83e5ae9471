"""The argparse side of ``up``, ``down``, ``status`` and ``serve``."""

from __future__ import annotations

import argparse

from clusterflow_cli.stack.deploy import WORK_POOL
from clusterflow_orchestration.deployments.serve import DEFAULT_MODEL_NAME


def add_parsers(subparsers) -> None:
    """Add ``up``, ``down``, ``status`` and ``serve`` to the ``clusterflow`` parser."""
    _add_up_parser(subparsers)
    p_down = subparsers.add_parser(
        "down",
        help="stop what 'clusterflow up' started",
        description="Stop the processes recorded under DIR/stack: those 'clusterflow up' started "
        "(servers, worker) or the local Prefect server a train or monitor started. Only recorded "
        "processes are stopped; nothing recorded is not an error.",
    )
    _workspace_option(p_down)
    p_status = subparsers.add_parser(
        "status",
        help="show the local stack's processes and URLs",
        description="Show each recorded process (running, stopped, or its port served by another "
        "process) and the URLs to export. Exit status 0 when a stack is recorded, 1 when none is.",
    )
    _workspace_option(p_status)
    _add_serve_parser(subparsers)


def _workspace_option(p: argparse.ArgumentParser) -> None:
    """Add ``--workspace`` and ``--debug``, which every stack command takes."""
    p.add_argument(
        "--workspace",
        default=".clusterflow",
        metavar="DIR",
        help="the stack's pid file, logs and databases go to DIR/stack (default: %(default)s)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _port(text: str) -> int:
    """Return ``text`` as a TCP port a server can listen on (argparse type)."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _add_up_parser(subparsers) -> None:
    """Add ``up``: its ports, environment, workdir, model name and what to leave out."""
    p_up = subparsers.add_parser(
        "up",
        help="start Prefect + MLflow servers, deploy, start a worker (127.0.0.1)",
        description="Start a Prefect server and an MLflow tracking server on 127.0.0.1, create the "
        f"'{WORK_POOL}' work pool, deploy the environment's deployments from "
        "deployments/prefect.yaml and start a worker. 'clusterflow down' stops them.",
    )
    _workspace_option(p_up)
    p_up.add_argument(
        "--env",
        choices=("dev", "prod"),
        default="dev",
        help="deployments to deploy (default: %(default)s)",
    )
    p_up.add_argument(
        "--prefect-port",
        type=_port,
        default=4200,
        metavar="PORT",
        help="Prefect server port (default: %(default)s)",
    )
    p_up.add_argument(
        "--mlflow-port",
        type=_port,
        default=5000,
        metavar="PORT",
        help="MLflow server port (default: %(default)s)",
    )
    p_up.add_argument(
        "--workdir",
        default=".",
        metavar="DIR",
        help="where deployed runs execute and their relative paths resolve (default: here)",
    )
    p_up.add_argument(
        "--model-name",
        default=DEFAULT_MODEL_NAME,
        metavar="NAME",
        help="registered model the deployments train, monitor and score and the drift "
        "automation listens for (default: %(default)s, the one 'clusterflow train' registers)",
    )
    p_up.add_argument("--no-worker", action="store_true", help="do not start a worker")
    p_up.add_argument("--no-deploy", action="store_true", help="servers only")
    p_up.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds each server may take to start (default: %(default)g)",
    )


def _add_serve_parser(subparsers) -> None:
    """Add ``serve``, whose options are those of ``deployments/serve.py``."""
    from clusterflow_orchestration.deployments.serve import add_arguments

    p_serve = subparsers.add_parser(
        "serve",
        help="serve the deployments from this process (no work pool)",
        description="Serve the training, monitoring and scoring deployments of "
        "deployments/prefect.yaml (schedules and the drift -> retrain trigger included) from "
        "this process. Reports to PREFECT_API_URL, else to the running stack of 'clusterflow "
        "up' under --workspace.",
    )
    _workspace_option(p_serve)
    add_arguments(p_serve)
