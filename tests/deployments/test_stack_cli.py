"""`clusterflow down` stops exactly the recorded process groups; serve needs a Prefect API."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from clusterflow_cli import stack
from clusterflow_cli.main import main


def _start_sleeper(ws, tmp_path, name):
    """Start ``sleep 300`` as a recorded stack process and wait until /proc shows it.

    Popen can return before the child's /proc cmdline shows the new program (seen on a loaded
    machine, in CI too): wait for it, as `up` waits for its servers' health checks.
    """
    stack.stack_dir(ws).mkdir(parents=True)
    _, entry, _ = stack._start(name, ["sleep", "300"], os.environ, ws, tmp_path, "300")
    deadline = time.monotonic() + 30
    while not stack._alive(entry) and time.monotonic() < deadline:
        time.sleep(0.05)
    return entry


def test_down_returns_when_the_whole_group_has_stopped(tmp_path):
    # The leader ends at once on SIGTERM; its child takes a second more (a server's worker).
    ws = tmp_path / "ws"
    stack.stack_dir(ws).mkdir(parents=True)
    child = "trap 'sleep 1; exit 0' TERM; while :; do sleep 0.1; done"
    cmd = ["sh", "-c", f'sh -c "{child}" & wait', "lingering"]
    _, entry, _ = stack._start("server", cmd, os.environ, ws, tmp_path, "lingering")
    deadline = time.monotonic() + 30
    while len(stack._group_members(entry["pid"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stack._write_state(ws, {"env": {}, "processes": [entry]})
    assert stack.down(ws, echo=lambda _m: None) == ["server"]
    assert stack._group_members(entry["pid"]) == []


def test_down_stops_the_workers_of_a_leader_that_died(tmp_path):
    ws = tmp_path / "ws"
    stack.stack_dir(ws).mkdir(parents=True)
    cmd = ["sh", "-c", "sleep 300 & exit 0", "orphaned"]  # the leader ends, its child stays
    proc, entry, _ = stack._start("server", cmd, os.environ, ws, tmp_path, "orphaned")
    proc.wait()
    deadline = time.monotonic() + 30
    while not stack._group_members(entry["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not stack._alive(entry) and stack._group_members(entry["pid"])
    stack._write_state(ws, {"env": {}, "processes": [entry]})
    assert stack.down(ws, echo=lambda _m: None) == ["server"]
    assert stack._group_members(entry["pid"]) == []


def test_down_stops_only_recorded_processes(tmp_path):
    ws = tmp_path / "ws"
    entry = _start_sleeper(ws, tmp_path, "sleeper")
    bystander = subprocess.Popen(["sleep", "301"])
    try:
        stack._write_state(ws, {"env": {}, "processes": [entry]})
        # a reused pid running something else is not ours
        assert not stack._alive({**entry, "marker": "prefect"})
        assert stack._alive(entry)
        assert stack.down(ws, echo=lambda _m: None) == ["sleeper"]
        assert not stack._alive(entry)
        assert bystander.poll() is None
        assert stack.read_state(ws) == {}
        assert stack.down(ws, echo=lambda _m: None) == []
    finally:
        bystander.kill()
        bystander.wait()


def test_serve_without_prefect_api_is_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["serve", "--env", "dev", "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PREFECT_API_URL" in err[0]


def test_status_without_stack(tmp_path, capsys):
    assert main(["status", "--workspace", str(tmp_path)]) == 1
    assert "no stack recorded" in capsys.readouterr().out


def test_up_refuses_a_taken_port_naming_the_process(tmp_path, capsys):
    """Issue 13 item 3: with another stack on its ports, `up` said "stack is up" in 0 s (the
    other stack answered the health checks) while its own Prefect exited "port in use"."""
    import socket

    from tests.integration.conftest import free_port

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        args = ["up", "--workspace", str(tmp_path / "ws"), "--prefect-port", str(taken)]
        assert main([*args, "--mlflow-port", str(free_port())]) != 0
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert f"port {taken} for the Prefect server is already in use by pid {os.getpid()}" in line
    assert "--prefect-port" in line
    assert "stack is up" not in out
    assert stack.read_state(tmp_path / "ws") == {}  # nothing was started


def test_up_next_steps_match_what_was_started():
    """Issue 13 item 9: `up --no-deploy` still suggested `prefect deployment run`."""
    env = {"PREFECT_API_URL": "a", "PREFECT_UI_URL": "u", "MLFLOW_TRACKING_URI": "m"}
    worker = {"name": "prefect-worker"}
    deployed = {"env": "dev", "model_name": "clusterflow", "workdir": "/w"}
    servers_only = stack.up_next_steps({"env": env, "deployed": None, "processes": []})
    assert not any("prefect deployment run" in line for line in servers_only)
    assert any("clusterflow train" in line for line in servers_only)
    no_worker = stack.up_next_steps({"env": env, "deployed": deployed, "processes": []})
    assert any("clusterflow serve --env dev" in line for line in no_worker)
    full = stack.up_next_steps({"env": env, "deployed": deployed, "processes": [worker]})
    assert any("prefect deployment run clusterflow-train/dev" in line for line in full)


def test_status_tells_a_server_whose_port_is_served_by_another_process(tmp_path):
    """Issue 13 item 3: `status` showed the MLflow of a stack that never got its port "running"."""
    import socket

    ws = tmp_path / "ws"
    entry = _start_sleeper(ws, tmp_path, "mlflow-server")
    stack._write_state(ws, {"env": {}, "processes": [entry]})
    try:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            port = squatter.getsockname()[1]
            urls = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
            assert stack.process_status(entry, urls) == (
                f"running, but port {port} is served by pid {os.getpid()}"
            )
        assert stack.process_status(entry, urls) == f"running, not listening on {port}"
    finally:
        stack.down(ws, echo=lambda _m: None)
    assert stack.process_status(entry, urls) == "stopped"


def test_a_kept_server_whose_port_another_server_took_is_refused(tmp_path, monkeypatch):
    """The kept Prefect server's port is picked free, then bound seconds later: if another
    server answers on it meanwhile, the command must not report to that one."""
    import http.server
    import threading

    from clusterflow_cli import server

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    slow_prefect = tmp_path / "prefect"  # still importing when the squatter answers
    slow_prefect.write_text("#!/bin/sh\nsleep 300\n")  # sh keeps 'server' in its command line
    slow_prefect.chmod(0o755)
    monkeypatch.setattr(server, "_free_port", lambda: squatter.server_address[1])
    monkeypatch.setattr(stack, "_bin", lambda name: str(slow_prefect))
    started = []
    real_start = stack._start

    def recording_start(*args, **kwargs):
        proc, entry, log = real_start(*args, **kwargs)
        started.append(proc)
        return proc, entry, log

    monkeypatch.setattr(stack, "_start", recording_start)
    try:
        with pytest.raises(stack.StackError, match="not by the server"):
            server.start_kept_server(tmp_path / "ws", timeout=30, echo=lambda _m: None)
    finally:
        squatter.shutdown()
        squatter.server_close()
    assert stack.read_state(tmp_path / "ws") == {}  # its own server was stopped and forgotten
    (proc,) = started
    assert proc.wait(timeout=30) is not None  # stopped, not left behind


def test_every_registry_command_uses_the_running_stacks_mlflow(tmp_path, monkeypatch, capsys):
    """With `up`'s MLflow server running, score and monitor looked in the workspace's SQLite file
    while train registered on the server: a model trained a minute earlier was "not found"."""
    from clusterflow_cli.server import use_stack_registry

    ws = tmp_path / "ws"
    entry = _start_sleeper(ws, tmp_path, "mlflow-server")  # stands in for the server process
    stack_uri = f"sqlite:///{tmp_path / 'stack.db'}"
    stack._write_state(ws, {"env": {"MLFLOW_TRACKING_URI": stack_uri}, "processes": [entry]})
    data = tmp_path / "batch.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # restored afterwards, whatever sets it
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
        assert use_stack_registry(ws) is None  # a set URI wins
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
        for command in (
            ["score", str(data), "--out", str(tmp_path / "a.csv")],
            ["monitor", str(data), "--out", str(tmp_path / "m")],
        ):
            assert main([*command, "--workspace", str(ws)]) == 2
            err = capsys.readouterr().err
            # the stack's store (not created by the lookup), not the workspace's own file
            missing = f"there is no registry at {tmp_path / 'stack.db'}"
            assert f"no model models:/clusterflow@champion: {missing}" in err
            assert not (tmp_path / "stack.db").exists()
            monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    finally:
        stack.down(ws, echo=lambda _m: None)
    assert use_stack_registry(ws) is None  # stopped: the workspace's own SQLite file again


def test_up_checks_its_ports_and_workdir_before_starting_anything(tmp_path, capsys):
    """`--prefect-port 99999` was 'unexpected OverflowError', `0` hung, and a missing --workdir
    failed at the worker step, after both servers had started."""
    ws = tmp_path / "ws"
    for port in ("99999", "0", "http"):
        with pytest.raises(SystemExit) as exit_:
            main(["up", "--workspace", str(ws), "--prefect-port", port])
        assert exit_.value.code == 2
        assert f"{port!r} is not a port (1-65535)" in capsys.readouterr().err
    assert main(["up", "--workspace", str(ws), "--workdir", str(tmp_path / "nowhere")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "nowhere: no such folder" in line
    assert main(["up", "--workspace", str(ws), "--prefect-port", "4321", "--mlflow-port", "4321"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--prefect-port and --mlflow-port are both 4321" in line
    assert stack.read_state(ws) == {}  # nothing was started or recorded


def test_serve_reports_to_the_running_stack_without_exports(tmp_path, monkeypatch, capsys):
    """`serve` demanded PREFECT_API_URL while `up`'s stack ran; train and monitor found it."""
    ws = tmp_path / "ws"
    entry = _start_sleeper(ws, tmp_path, "prefect-server")  # stands in for the server process
    api = "http://127.0.0.1:9/api"
    stack._write_state(ws, {"env": {"PREFECT_API_URL": api}, "processes": [entry]})
    # set (empty, which counts as unset) so that monkeypatch restores what serve sets
    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    try:
        missing = tmp_path / "missing.yaml"  # fails after the server is chosen, before serving
        assert main(["serve", "--workspace", str(ws), "--prefect-file", str(missing)]) == 2
        assert "cannot read" in capsys.readouterr().err
        assert os.environ["PREFECT_API_URL"] == api
    finally:
        stack.down(ws, echo=lambda _m: None)
