"""`clusterflow down` stops exactly the recorded process groups; serve needs a Prefect API."""

from __future__ import annotations

import os
import subprocess

from clusterflow_cli import stack
from clusterflow_cli.main import main


def test_down_stops_only_recorded_processes(tmp_path):
    ws = tmp_path / "ws"
    stack.stack_dir(ws).mkdir(parents=True)
    _, entry, _ = stack._start("sleeper", ["sleep", "300"], os.environ, ws, tmp_path, "300")
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


def test_serve_without_prefect_api_is_one_line_error(monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["serve", "--env", "dev"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PREFECT_API_URL" in err[0]


def test_status_without_stack(tmp_path, capsys):
    assert main(["status", "--workspace", str(tmp_path)]) == 1
    assert "no stack recorded" in capsys.readouterr().out
