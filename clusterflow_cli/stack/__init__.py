"""``clusterflow up | down | status | serve``: a local Prefect + MLflow stack on 127.0.0.1.

``up`` starts a Prefect server and an MLflow tracking server (SQLite backend, artifacts on disk,
one worker process), creates the ``process`` work pool, deploys the chosen environment's
deployments from ``deployments/prefect.yaml`` and starts a worker. Every process it starts is
recorded (pid, command, log file) in ``<workspace>/stack/stack.json``; ``down`` stops exactly
those process groups and nothing else. ``serve`` serves the same deployments from one process,
without a server-side work pool (it still needs a Prefect API: ``up --no-worker`` or any server).

Modules, top to bottom: :mod:`.state` (the folder, the state file, the environment),
:mod:`.processes` (start, find and stop processes; who owns a port), :mod:`.servers` (Prefect and
MLflow), :mod:`.deploy` (work pool, deployments, worker), :mod:`.launch` (``up`` as its steps),
:mod:`.commands` (what each command prints) and :mod:`.parsers` (their options). The names below
are the ones callers and tests used when this was one module.
"""

from clusterflow_cli.stack.commands import (
    COMMANDS,
    SERVER_URL_KEYS,
    cmd_down,
    cmd_serve,
    cmd_status,
    cmd_up,
    process_status,
    up_next_steps,
)
from clusterflow_cli.stack.deploy import (
    DEPLOY_SELECTORS,
    FLOW_NAMES,
    PREFECT_YAML,
    WORK_POOL,
    write_deploy_file,
)
from clusterflow_cli.stack.launch import up
from clusterflow_cli.stack.parsers import add_parsers
from clusterflow_cli.stack.processes import (
    _alive,
    _bin,
    _group_members,
    _start,
    check_port_free,
    down,
    port_in_use,
    port_owner,
    wait_http,
)
from clusterflow_cli.stack.servers import wait_ours
from clusterflow_cli.stack.state import (
    HOST,
    ROOT,
    StackError,
    _write_state,
    read_state,
    stack_dir,
    stack_env,
)

__all__ = [
    "COMMANDS",
    "DEPLOY_SELECTORS",
    "FLOW_NAMES",
    "HOST",
    "PREFECT_YAML",
    "ROOT",
    "SERVER_URL_KEYS",
    "WORK_POOL",
    "StackError",
    "_alive",
    "_bin",
    "_group_members",
    "_start",
    "_write_state",
    "add_parsers",
    "check_port_free",
    "cmd_down",
    "cmd_serve",
    "cmd_status",
    "cmd_up",
    "down",
    "port_in_use",
    "port_owner",
    "process_status",
    "read_state",
    "stack_dir",
    "stack_env",
    "up",
    "up_next_steps",
    "wait_http",
    "wait_ours",
    "write_deploy_file",
]
