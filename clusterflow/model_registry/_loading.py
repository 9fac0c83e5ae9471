"""Loading a :class:`~clusterflow.model.ClusterModel` back from the registry."""

from __future__ import annotations

import logging

import mlflow
from mlflow.exceptions import MlflowException

from clusterflow.errors import RegistryError
from clusterflow.model_registry._store import redact
from clusterflow.model_registry._versions import champion_version
from clusterflow.model_uri import RunURI, parse_model_uri

logger = logging.getLogger(__name__)


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
    parse_model_uri(uri)  # a path or a URL is refused
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


def recorded_train_config(uri: str) -> dict:
    """Return the training config logged with the model at ``uri`` (its run's ``config.json``).

    Raises
    ------
    RegistryError
        When the registry has no such model, or its run kept no config.
    """
    client = mlflow.MlflowClient()
    try:
        parsed = parse_model_uri(uri)
        if isinstance(parsed, RunURI):
            run_id = parsed.run_id
        else:
            run_id = str(parsed.model_version(client).run_id)
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    except (MlflowException, ValueError) as err:  # an OSError is left to the task's retries
        raise RegistryError(
            f"cannot read the training settings of {uri} from "
            f"{redact(mlflow.get_tracking_uri())}: {redact(' '.join(str(err).split()))[:300]}",
            hint="check settings_from and MLFLOW_TRACKING_URI",
        ) from err
