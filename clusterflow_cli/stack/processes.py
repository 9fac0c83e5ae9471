"""Starting, finding and stopping the stack's processes, and who owns a port.

Each process runs in its own session (its own process group), so ``down`` stops it and whatever it
spawned, and a port's owner can be told apart from another stack's server by its session id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from clusterflow_cli.stack.state import HOST, StackError, _state_file, read_state, stack_dir


def _bin(name: str) -> str:
    """Return the console script ``name`` beside the running interpreter."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


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


def _group_members(pgid: int) -> list[int]:
    """Return the pids of process group ``pgid`` that still run (zombies excluded), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            state, _ppid, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


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
        if not _alive(entry) and not _group_members(entry["pid"]):
            continue  # its leader may have died while its workers hold the port: stop those
        try:
            os.killpg(entry["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + grace
        # the whole group: a server's workers can outlive its leader and keep the port
        while time.monotonic() < deadline and (_alive(entry) or _group_members(entry["pid"])):
            time.sleep(0.3)
            try:  # reap our own child if it was started by this process
                os.waitpid(entry["pid"], os.WNOHANG)
            except ChildProcessError:
                pass
        if _alive(entry) or _group_members(entry["pid"]):
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
