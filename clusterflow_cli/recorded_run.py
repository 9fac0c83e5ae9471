"""A flow run recorded through Prefect's REST API, for work that needs no flow engine.

``clusterflow score`` with ``PREFECT_API_URL`` set used to run the scoring flow: importing Prefect
and driving a flow run with three task runs cost more than the scoring itself (10.95 s against
5.70 s without a server, 1,000 rows). The scoring is one plain function
(:func:`clusterflow.scoring.score_table`), so the command calls it directly and records the run
with a handful of HTTP requests to the same API (a few hundredths of a second): a flow run of the
flow ``clusterflow-score`` with the scoring flow's parameters, ``Running`` while the rows are
scored, then ``Completed`` with a log line and a markdown summary, or ``Failed`` with the one-line
error. State changes go through the server's orchestration, so automations and events see the run
as any other. Deployments still run
:func:`clusterflow_orchestration.flows.scoring.scoring_flow` itself.

Authentication as Prefect's client does it: ``PREFECT_API_KEY`` (a bearer token, Prefect Cloud) or
``PREFECT_API_AUTH_STRING`` (basic auth of a self-hosted server); ``PREFECT_API_SSL_CERT_FILE`` or
``PREFECT_API_TLS_INSECURE_SKIP_VERIFY`` as in Prefect's settings.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from clusterflow.errors import ClusterflowError, ConfigError

TIMEOUT_S = 30.0
CLI_TAG = "clusterflow-cli"
"""Tag of the runs recorded by the command line (they have no task runs)."""


class RecordedRun:
    """One flow run of ``flow_name`` on the Prefect API at ``api_url``."""

    def __init__(self, api_url: str, flow_name: str, parameters: dict) -> None:
        self.api_url = api_url.rstrip("/")
        self.flow_name = flow_name
        self.parameters = parameters
        self.id: str | None = None
        self.name: str | None = None
        self.outcome = "done"
        self.markdown: str | None = None
        self.lines: list[str] = []

    def _call(self, method: str, path: str, body=None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if os.environ.get("PREFECT_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['PREFECT_API_KEY']}"
        elif os.environ.get("PREFECT_API_AUTH_STRING"):
            token = base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        # S310: the URL is the user's own PREFECT_API_URL, the one Prefect's client would call
        request = urllib.request.Request(  # noqa: S310
            self.api_url + path,
            method=method,
            data=None if body is None else json.dumps(body, default=str).encode(),
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=_tls()) as response:  # noqa: S310
            text = response.read()
        return json.loads(text) if text else None

    def start(self) -> None:
        """Create the flow (if new) and a flow run in state ``Running``.

        Raises
        ------
        ConfigError
            When the API cannot be reached or refuses the request (before any row is scored).
        """
        try:
            flow = self._call("POST", "/flows/", {"name": self.flow_name})
            run = self._call(
                "POST",
                "/flow_runs/",
                {
                    "flow_id": flow["id"],
                    "parameters": self.parameters,
                    "tags": [CLI_TAG],
                    "state": {"type": "RUNNING", "name": "Running"},
                },
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"cannot record the run in the Prefect API at {self.api_url}: {_reason(err)}",
                hint="start it (clusterflow up), or unset PREFECT_API_URL to score without "
                "recording a run",
            ) from err
        self.id, self.name = str(run["id"]), run.get("name")

    def log(self, message: str, *, level: int = 20) -> None:
        """Add one log line to the run (what ``get_run_logger().info`` would have sent)."""
        stamp = datetime.now(UTC).isoformat()
        entry = {"name": "clusterflow.score", "level": level, "message": message}
        self._call("POST", "/logs/", [{**entry, "timestamp": stamp, "flow_run_id": self.id}])

    def finish(self, *, ok: bool, message: str, markdown: str | None = None) -> None:
        """Move the run to ``Completed`` (or ``Failed``), with a markdown artifact if given."""
        if markdown is not None:
            self._call(
                "POST",
                "/artifacts/",
                {"type": "markdown", "data": markdown, "flow_run_id": self.id},
            )
        state = {"type": "COMPLETED", "name": "Completed"} if ok else {"type": "FAILED"}
        state["message"] = message
        if not ok:
            state["name"] = "Failed"
        self._call("POST", f"/flow_runs/{self.id}/set_state", {"state": state, "force": False})


def _tls() -> ssl.SSLContext | None:
    if os.environ.get("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "").lower() in ("1", "true"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if os.environ.get("PREFECT_API_SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["PREFECT_API_SSL_CERT_FILE"])
    return None


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return " ".join(str(err).split())[:200] or type(err).__name__


@contextmanager
def recorded_run(
    api_url: str | None, flow_name: str, parameters: dict
) -> Iterator[RecordedRun | None]:
    """Record the block as a flow run on ``api_url``; yield the run (None when no API is set).

    The run is ``Running`` inside the block. Set ``run.outcome`` (the state message) and
    optionally ``run.markdown`` and ``run.lines`` (log lines) in it: when the block ends the run
    is ``Completed`` with them. An exception in the block marks the run ``Failed`` with the
    error's one line, then propagates. A failure to record the end of a run that did its work is
    not an error of the command: it is said in one line on stderr.
    """
    if not api_url:
        yield None
        return
    run = RecordedRun(api_url, flow_name, parameters)
    run.start()
    try:
        yield run
    except BaseException as err:
        text = err.one_line() if isinstance(err, ClusterflowError) else _reason(err)
        try:
            run.finish(ok=False, message=f"{type(err).__name__}: {text}")
        except (OSError, ValueError):
            pass  # the command's own error is the one line the user needs
        raise
    try:
        for line in run.lines:
            run.log(line)
        run.finish(ok=True, message=run.outcome, markdown=run.markdown)
    except (OSError, ValueError) as err:
        from clusterflow_cli.console import say

        say(
            f"clusterflow: warning: the work is done but the Prefect run {run.name} could not "
            f"be marked completed at {run.api_url}: {_reason(err)}"
        )
