"""``clusterflow up | down | status | serve``: a local Prefect + MLflow stack on 127.0.0.1.

``up`` starts a Prefect server and an MLflow tracking server (SQLite backend, artifacts on disk,
one worker process), creates the ``process`` work pool, deploys the chosen environment's
deployments from ``deployments/prefect.yaml`` and starts a worker. Every process it starts is
recorded (pid, command, log file) in ``<workspace>/stack/stack.json``; ``down`` stops exactly
those process groups and nothing else. ``serve`` serves the same deployments from one process,
without a server-side work pool (it still needs a Prefect API: ``up --no-worker`` or any server).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusterflow.errors import ClusterflowError, ConfigError
from deployments.serve import DEFAULT_MODEL_NAME

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "deployments" / "prefect.yaml"
WORK_POOL = "clusterflow-process"
FLOW_NAMES = ("clusterflow-train", "clusterflow-monitor", "clusterflow-score")
# `prefect deploy --name` matches "<entrypoint function, dashed>/<deployment name>"
DEPLOY_SELECTORS = ("training-flow", "monitoring-flow", "scoring-flow")
HOST = "127.0.0.1"


class StackError(ClusterflowError):
    """A server of the local stack did not start, or the stack is in an unexpected state."""


def _bin(name: str) -> str:
    """Return the console script ``name`` beside the running interpreter."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


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


def _alive(entry: Mapping) -> bool:
    """Tell whether ``entry``'s pid still runs the command we started (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{entry['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(entry["pid"], 0)
        except OSError:
            return False
        return True
    return entry["marker"].encode() in cmdline


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT, state 0A is LISTEN
            if len(fields) < 10 or fields[3] != "0A":
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_owner(port: int) -> tuple[int, str] | None:
    """Return ``(pid, command line)`` of the process listening on ``port``, if it can be seen."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    return int(proc.name), cmd
            except OSError:
                continue
    return None


def port_in_use(port: int) -> bool:
    """Tell whether something accepts TCP connections on ``HOST:port``."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def check_port_free(port: int, what: str) -> None:
    """Raise :class:`StackError` when ``port`` is taken, naming the process if it is visible."""
    if not port_in_use(port) and not _listening_inodes(port):
        return
    owner = port_owner(port)
    by = f" by pid {owner[0]} ({owner[1][:120]})" if owner else " by another process"
    flag = "--prefect-port" if what == "Prefect" else "--mlflow-port"
    raise StackError(
        f"port {port} for the {what} server is already in use{by}",
        hint=f"stop that process or choose another port with {flag}",
    )


def _answered_by_us(port: int, proc: subprocess.Popen) -> bool:
    """Tell whether what listens on ``port`` belongs to ``proc``'s process group (when visible)."""
    owner = port_owner(port)
    if owner is None:
        return True  # /proc hides it (another user's process would have failed the pre-check)
    try:  # start_new_session: the server and every process it spawns share its session id
        return os.getsid(owner[0]) == proc.pid
    except OSError:
        return False


def wait_http(
    url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None
):
    """Poll ``url`` until it answers 200, the process dies, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-800:] if log and log.exists() else ""
            raise StackError(
                f"{url} did not come up: the process exited with {proc.returncode}",
                hint=f"see {log}: {' '.join(tail.split()[-40:])}",
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - http://127.0.0.1 only
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise StackError(f"{url} did not answer within {timeout:.0f} s", hint=f"see {log}")


def _start(
    name: str, cmd: Sequence[str], env: Mapping[str, str], workspace: Path, cwd: Path, marker: str
) -> tuple[subprocess.Popen, dict, Path]:
    log = stack_dir(workspace) / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv built here from the venv's own executables
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `down` stops it and its children
        )
    entry = {"name": name, "pid": proc.pid, "cmd": list(cmd), "log": str(log), "marker": marker}
    return proc, entry, log


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


def up(
    workspace: str | Path = ".clusterflow",
    *,
    env_name: str = "dev",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    worker: bool = True,
    deploy: bool = True,
    timeout: float = 180.0,
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


def _check_can_start(workspace: Path, prefect_port: int, mlflow_port: int) -> None:
    """Refuse a second stack in one workspace, and ports another process already answers."""
    existing = read_state(workspace)
    if any(_alive(p) for p in existing.get("processes", [])):
        raise StackError(
            f"a stack is already running for {workspace}", hint="run 'clusterflow down' first"
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
    _wait_ours(f"http://{HOST}:{prefect_port}/api/health", prefect_port, timeout, proc, log)
    launch.step(f"Prefect server ready at {env['PREFECT_UI_URL']} (pid {proc.pid})", t0)
    _wait_ours(f"http://{HOST}:{mlflow_port}/health", mlflow_port, timeout, mproc, mlog)
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


def _deploy(
    launch: _Launch, prefect_file: str | Path, env_name: str, model_name: str | None
) -> None:
    """Create the work pool and deploy the environment's deployments, resolved for the workdir."""
    t1 = time.monotonic()
    workdir, env, project_dir = launch.workdir, launch.env, launch.project_dir
    deploy_file = write_deploy_file(
        prefect_file, launch.home / "prefect.yaml", workdir=workdir, model_name=model_name
    )
    _run(
        [_bin("prefect"), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        env,
        project_dir,
    )
    names = [arg for flow in DEPLOY_SELECTORS for arg in ("--name", f"{flow}/{env_name}")]
    _run(
        [_bin("prefect"), "--no-prompt", "deploy", "--prefect-file", str(deploy_file), *names],
        env,
        project_dir,
    )
    launch.state["deployed"] = {
        "env": env_name,
        "deployments": [f"{flow}/{env_name}" for flow in FLOW_NAMES],
        "model_name": model_name,
        "workdir": str(workdir),
        "file": str(deploy_file),
    }
    _write_state(launch.workspace, launch.state)
    launch.step(
        f"deployed {', '.join(launch.state['deployed']['deployments'])} to pool {WORK_POOL} "
        f"(model {model_name or 'of prefect.yaml'}, runs in {workdir})",
        t1,
    )


def _start_worker(launch: _Launch) -> None:
    """Start a process worker on the pool; it runs the deployed flows in the workdir."""
    t2 = time.monotonic()
    _, wentry, _ = _start(
        "prefect-worker",
        [_bin("prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process"],
        launch.env,
        launch.workspace,
        launch.workdir,
        marker="worker",
    )
    launch.record(wentry)
    launch.step(f"worker started on pool {WORK_POOL} in {launch.workdir} (pid {wentry['pid']})", t2)


def _wait_ours(url: str, port: int, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    """Wait for ``url``, then make sure it is our process that answered, not a squatter."""
    wait_http(url, timeout, proc, log)
    if not _answered_by_us(port, proc):
        owner = port_owner(port)
        raise StackError(
            f"port {port} is answered by pid {owner[0] if owner else '?'}, not by the server "
            f"this stack started",
            hint=f"see {log}",
        )


def write_deploy_file(
    prefect_file: str | Path,
    target: Path,
    *,
    workdir: Path,
    model_name: str | None,
) -> Path:
    """Write prefect.yaml resolved for ``workdir`` and ``model_name`` (see deployments.resolve)."""
    import yaml

    from deployments.resolve import resolve_document

    document = yaml.safe_load(Path(prefect_file).read_text())
    resolved = resolve_document(document, workdir, model_name=model_name)
    target.write_text(
        "# Written by 'clusterflow up' from "
        f"{prefect_file}: paths resolved for {workdir}.\n"
        + yaml.safe_dump(resolved, sort_keys=False)
    )
    return target


def _run(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
    # S603: argv built here from the venv's own executables; the return code is checked below
    done = subprocess.run(  # noqa: S603
        list(cmd), env=dict(env), cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = " ".join((done.stdout + done.stderr).split()[-60:])
        raise StackError(f"'{' '.join(cmd[1:4])} ...' failed ({done.returncode})", hint=tail)
    return done.stdout


def down(
    workspace: str | Path = ".clusterflow", *, grace: float = 20.0, echo: Callable = print
) -> list[str]:
    """Stop the process groups recorded by :func:`up` (newest first); return their names."""
    state = read_state(workspace)
    stopped = []
    for entry in reversed(state.get("processes", [])):
        if not _alive(entry):
            continue
        try:
            os.killpg(entry["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(entry):
            time.sleep(0.3)
            try:  # reap our own child if it was started by this process
                os.waitpid(entry["pid"], os.WNOHANG)
            except ChildProcessError:
                pass
        if _alive(entry):
            try:
                os.killpg(entry["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        stopped.append(entry["name"])
        echo(f"stopped {entry['name']} (pid {entry['pid']})")
    path = _state_file(workspace)
    if path.exists():
        path.unlink()
    return stopped


# ----------------------------------------------------------------------------- command line


def add_parsers(subparsers) -> None:
    """Add ``up``, ``down``, ``status`` and ``serve`` to the ``clusterflow`` parser."""
    from deployments.serve import add_arguments

    def workspace_option(p):
        p.add_argument(
            "--workspace",
            default=".clusterflow",
            metavar="DIR",
            help="the stack's pid file, logs and databases go to DIR/stack (default: %(default)s)",
        )
        p.add_argument("--debug", action="store_true", help="show tracebacks")

    p_up = subparsers.add_parser(
        "up",
        help="start Prefect + MLflow servers, deploy, start a worker (127.0.0.1)",
        description="Start a Prefect server and an MLflow tracking server on 127.0.0.1, create the "
        f"'{WORK_POOL}' work pool, deploy the environment's deployments from "
        "deployments/prefect.yaml and start a worker. 'clusterflow down' stops them.",
    )
    workspace_option(p_up)
    p_up.add_argument("--env", choices=("dev", "prod"), default="dev", help="deployments to deploy")
    p_up.add_argument("--prefect-port", type=int, default=4200, metavar="PORT")
    p_up.add_argument("--mlflow-port", type=int, default=5000, metavar="PORT")
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
    p_up.add_argument("--timeout", type=float, default=180.0, metavar="S", help="startup timeout")

    p_down = subparsers.add_parser("down", help="stop what 'clusterflow up' started")
    workspace_option(p_down)
    p_status = subparsers.add_parser("status", help="show the local stack's processes and URLs")
    workspace_option(p_status)

    p_serve = subparsers.add_parser(
        "serve",
        help="serve the deployments from this process (no work pool)",
        description="Serve the training, monitoring and scoring deployments of "
        "deployments/prefect.yaml (schedules and the drift -> retrain trigger included) from "
        "this process. Needs PREFECT_API_URL to point at a Prefect server.",
    )
    p_serve.add_argument("--debug", action="store_true", help="show tracebacks")
    add_arguments(p_serve)


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
    from deployments.serve import run

    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "clusterflow serve needs a Prefect server",
            hint="set PREFECT_API_URL (e.g. after 'clusterflow up --no-worker') or start "
            "'prefect server start'",
        )
    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "serve": cmd_serve,
}
