"""Deprecated: the MLflow calls moved to :mod:`clusterflow.model_registry`.

``registry`` beside ``registration`` did not say which one held the sequence; the MLflow calls now
live in a module named for them. This module only re-exports the public names so old imports keep
working.
"""

import warnings

from clusterflow.model_registry import *  # noqa: F403
from clusterflow.model_registry import __all__  # noqa: F401

warnings.warn(
    "clusterflow.registry is deprecated; import from clusterflow.model_registry",
    DeprecationWarning,
    stacklevel=2,
)
