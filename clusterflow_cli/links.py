"""Where to look after a run, and which automation (if any) reacts to a drift event.

The links of a run lead to its Prefect flow run, its MLflow run and its model version.

With a server (``PREFECT_API_URL``, an ``http(s)`` ``MLFLOW_TRACKING_URI``) the links are the
server's pages. Without one, Prefect kept the run in its local database and MLflow in the SQLite
store, so each link comes with the command that serves those pages (``prefect server start``,
``mlflow ui --backend-store-uri ...``) and the address that command opens.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from clusterflow_orchestration.deployments.resolve import DRIFT_RESOURCE_PREFIX

PREFECT_DEFAULT_UI = "http://127.0.0.1:4200"
MLFLOW_DEFAULT_UI = "http://127.0.0.1:5000"
DRIFT_EVENT = "clusterflow.drift.detected"
"""The event monitoring emits (``clusterflow_orchestration.tasks.monitor.DRIFT_EVENT``, which
imports Prefect and MLflow)."""


def prefect_ui(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the Prefect UI of the configured server, or None when runs use a local one."""
    env = os.environ if environ is None else environ
    if env.get("PREFECT_UI_URL"):
        return env["PREFECT_UI_URL"].rstrip("/")
    api = env.get("PREFECT_API_URL", "").rstrip("/")
    if not api:
        return None
    return api[: -len("/api")] if api.endswith("/api") else api


def is_server_uri(tracking_uri: str | None) -> bool:
    """Tell whether MLflow's tracking URI is a server whose pages can be opened."""
    return bool(tracking_uri) and str(tracking_uri).startswith(("http://", "https://"))


def flow_run_lines(flow_run_id: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Link to the Prefect flow run (with ``prefect server start`` when there is no server)."""
    if not flow_run_id:
        return []
    ui = prefect_ui(environ)
    if ui:
        return [f"  Prefect flow run:   {ui}/runs/flow-run/{flow_run_id}"]
    return [
        f"  Prefect flow run:   {PREFECT_DEFAULT_UI}/runs/flow-run/{flow_run_id}"
        "   (after: prefect server start)"
    ]


def mlflow_lines(
    tracking_uri: str | None,
    experiment_id: str | None,
    run_id: str | None,
    model_name: str | None = None,
    model_version: str | int | None = None,
) -> list[str]:
    """Links to the MLflow run page and the registered model version."""
    if not run_id or not tracking_uri:
        return []
    server = is_server_uri(tracking_uri)
    base = str(tracking_uri).rstrip("/") if server else MLFLOW_DEFAULT_UI
    lines = []
    if experiment_id is not None:
        lines.append(f"  MLflow run:         {base}/#/experiments/{experiment_id}/runs/{run_id}")
    if model_name and model_version is not None:
        lines.append(
            f"  model version:      {base}/#/models/{quote(model_name, safe='')}"
            f"/versions/{model_version}"
        )
    if lines and not server:
        lines.append(f"  (MLflow pages after: mlflow ui --backend-store-uri {tracking_uri})")
    return lines


def run_link_lines(
    summary: Mapping, flow_run_id: str | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """All the links of a training run, from its summary and its Prefect flow run id."""
    lines = flow_run_lines(flow_run_id, environ)
    run_id = summary.get("mlflow_run_id")
    tracking_uri = summary.get("tracking_uri")
    experiment_id = summary.get("mlflow_experiment_id")
    if run_id and experiment_id is None and tracking_uri:
        experiment_id = _experiment_of(tracking_uri, run_id)
    model_uri = str(summary.get("model_uri") or "")
    name = _registered_name(model_uri)
    lines += mlflow_lines(tracking_uri, experiment_id, run_id, name, summary.get("model_version"))
    return lines


def _registered_name(model_uri: str) -> str | None:
    from clusterflow.errors import ConfigError
    from clusterflow.model_uri import RegisteredURI, parse_model_uri

    try:
        parsed = parse_model_uri(model_uri)
    except ConfigError:
        return None
    return parsed.name if isinstance(parsed, RegisteredURI) else None


def _experiment_of(tracking_uri: str, run_id: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri=tracking_uri).get_run(run_id).info.experiment_id
    except (MlflowException, OSError):
        return None


# ----------------------------------------------------------------------------- drift automations


def _patterns(match: Mapping | None) -> list[str]:
    value = (match or {}).get("prefect.resource.id")
    if value is None:
        return ["*"]  # no constraint on the resource: every drift event matches
    return [value] if isinstance(value, str) else list(value)


def automations_reacting(automations: Iterable[Mapping], model_uri: str) -> list[Mapping]:
    """Return the enabled automations whose trigger fires on the drift event of ``model_uri``.

    ``automations`` are the server's automation records (``POST /automations/filter``); a trigger
    reacts when it expects the drift event and one of its resource patterns (``*`` wildcards, as
    Prefect matches them) matches ``clusterflow.model.<model_uri>``.
    """
    resource = f"{DRIFT_RESOURCE_PREFIX}{model_uri}"
    found = []
    for automation in automations:
        trigger = automation.get("trigger") or {}
        if not automation.get("enabled", True):
            continue
        expect = set(trigger.get("expect") or ())
        if (
            expect
            and DRIFT_EVENT not in expect
            and not any(fnmatch.fnmatchcase(DRIFT_EVENT, e) for e in expect)
        ):
            continue
        if any(fnmatch.fnmatchcase(resource, p) for p in _patterns(trigger.get("match"))):
            found.append(automation)
    return found


def fetch_automations(api_url: str) -> list[dict]:
    """Read every automation of the Prefect server at ``api_url``."""
    import httpx

    resp = httpx.post(f"{api_url.rstrip('/')}/automations/filter", json={}, timeout=15)
    resp.raise_for_status()
    return resp.json()


def drift_reaction_lines(
    model_uri: str, emitted: bool, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Say what will react to the drift event of ``model_uri``: which automation, or nothing."""
    if not emitted:
        return []
    env = os.environ if environ is None else environ
    api = env.get("PREFECT_API_URL")
    if not api:
        return [
            f"  event {DRIFT_EVENT} emitted without a Prefect API: nothing reacts to it "
            "(set PREFECT_API_URL to a server where 'clusterflow up' or 'serve' deployed the "
            "retrain automation)"
        ]
    try:
        automations = fetch_automations(api)
    except Exception as err:  # a hint must never fail the command
        return [f"  event {DRIFT_EVENT} emitted; could not list the automations of {api}: {err}"]
    reacting = automations_reacting(automations, model_uri)
    if not reacting:
        listening = sorted(
            {
                p.removeprefix(DRIFT_RESOURCE_PREFIX)
                for a in automations
                if DRIFT_EVENT in set((a.get("trigger") or {}).get("expect") or ())
                for p in _patterns((a.get("trigger") or {}).get("match"))
            }
        )
        also = f" (automations listen for {', '.join(listening)})" if listening else ""
        return [
            f"  event {DRIFT_EVENT} emitted, but no automation on {api} listens for "
            f"{model_uri}: nothing retrains{also}; deploy for this model with "
            "'clusterflow up --model-name NAME' or 'clusterflow serve --model-name NAME'"
        ]
    names = ", ".join(f"'{a['name']}'" for a in reacting)
    return [f"  event {DRIFT_EVENT} emitted: automation {names} will start retraining"]
