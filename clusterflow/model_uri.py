"""The model URIs clusterflow reads: one parser for the command line, scoring and the registry.

``models:/<name>@<alias>`` and ``models:/<name>/<version>`` name a registered version
(:class:`RegisteredURI`); ``runs:/<run id>/<path>`` names the model a run logged
(:class:`RunURI`). Anything else (a path, an http URL, an ``s3:`` location) is refused: models
are loaded from the tracking server that ``MLFLOW_TRACKING_URI`` names, never from an arbitrary
place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clusterflow.errors import ConfigError

__all__ = ["HINT", "RegisteredURI", "RunURI", "parse_model_uri"]

HINT = "use models:/<name>@champion, models:/<name>/<version> or runs:/<run id>/model"
"""What the one-line error of an unusable URI suggests."""

_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")
_RUNS = re.compile(r"^runs:/(?P<run_id>[^/]+)/.")


@dataclass(frozen=True)
class RegisteredURI:
    """``models:/<name>@<alias>`` (``alias`` set) or ``models:/<name>/<version>``."""

    uri: str
    name: str
    alias: str | None = None
    version: str | None = None

    @property
    def latest(self) -> bool:
        """Whether this is ``models:/<name>/latest``: the newest version, as MLflow reads it."""
        return self.alias is None and str(self.version).lower() == "latest"

    def model_version(self, client: Any) -> Any:
        """Return the MLflow model version this URI names (``client``: an ``MlflowClient``)."""
        if self.alias is not None:
            return client.get_model_version_by_alias(self.name, self.alias)
        if self.latest:
            from mlflow.store.artifact.utils.models import get_model_name_and_version

            _, version = get_model_name_and_version(client, self.uri)
            return client.get_model_version(self.name, version)
        return client.get_model_version(self.name, str(self.version))


@dataclass(frozen=True)
class RunURI:
    """``runs:/<run id>/<path>``: the model a run logged."""

    uri: str
    run_id: str


def parse_model_uri(uri: str) -> RegisteredURI | RunURI:
    """Parse ``uri`` into its parts.

    Raises
    ------
    ConfigError
        For a URI that is not ``models:/<name>@<alias>``, ``models:/<name>/<version>`` or
        ``runs:/<run id>/<path>``.
    """
    found = _MODELS.match(uri)
    if found:
        return RegisteredURI(uri, found["name"], found["alias"], found["version"])
    found = _RUNS.match(uri)
    if found:
        return RunURI(uri, found["run_id"])
    raise ConfigError(f"model URI {uri!r} is not in the registry", hint=HINT)
