"""The tracking store: its URI, the connection, experiments, runs, flat params and the gate lock."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

_SECRET = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@")


def redact(text: str) -> str:
    """Hide passwords in URIs (``postgresql://u:secret@h`` -> ``postgresql://u:***@h``)."""
    return _SECRET.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))


def resolve_tracking_uri(workspace: str | Path = ".clusterflow") -> str:
    """Return ``MLFLOW_TRACKING_URI`` if set, else SQLite under the workspace (created)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = Path(workspace).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def connect(workspace: str | Path = ".clusterflow") -> str:
    """Point MLflow at the configured store and make sure its schema exists; return the URI.

    Two runs starting at once on a new SQLite store would both create its tables and one would
    fail (``table _alembic_tmp_experiments already exists``), so the first use of a SQLite store
    happens under an exclusive file lock beside the database.
    """
    uri = resolve_tracking_uri(workspace)
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        import fcntl

        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.with_name(db.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                client = MlflowClient()
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return uri


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""Makes MLflow 3's UI open the experiment on its training runs, not on the GenAI overview."""


def ensure_experiment(name: str, workspace: str | Path) -> str:
    """Return the id of experiment ``name``, creating it with artifacts under the workspace."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if not found.tags.get("mlflow.experimentKind"):
            for key, value in EXPERIMENT_KIND.items():
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = (Path(workspace).resolve() / "artifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except MlflowException:  # created by a concurrent run in between
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def create_run(
    experiment_id: str,
    *,
    run_name: str | None = None,
    start_time: datetime | None = None,
    tags: dict | None = None,
) -> str:
    """Create an MLflow run named ``run_name`` that started at ``start_time``; return its id.

    Training names its run after the Prefect flow run and dates it from the flow run's start,
    so both tools show one name and one clock for the run (``mlflow.start_run`` cannot date a
    run back; resume the returned id with ``mlflow.start_run(run_id=...)``).
    """
    millis = int(start_time.timestamp() * 1000) if start_time is not None else None
    run = MlflowClient().create_run(
        experiment_id, start_time=millis, tags=tags or {}, run_name=run_name
    )
    return run.info.run_id


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value if not isinstance(value, (list, tuple)) else ",".join(map(str, value))


def flat_params(config: dict) -> dict:
    """Config as flat ``a.b`` keys for ``mlflow.log_params``."""
    out: dict = {}
    _flatten("", config, out)
    return {k: ("" if v is None else str(v))[:500] for k, v in out.items()}


@contextmanager
def registry_lock(uri: str) -> Iterator[None]:
    """Serialise the gate re-check and the alias move between trainings on one SQLite store.

    MLflow has no compare-and-set for aliases; on a SQLite store (one machine) an exclusive lock
    beside the database makes "read the champion, decide, move the alias" one step. Other
    stores get no lock (the re-check narrows the race there, see the README).
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri.removeprefix("sqlite:///"))
    with open(db.with_name(db.name + ".gate.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
