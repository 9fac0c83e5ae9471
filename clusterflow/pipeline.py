"""Deprecated: the training stages moved to :mod:`clusterflow.stages`.

"Pipeline" names the wiring (``flows/``); the stage bodies live in a package named for what they
are. This module only re-exports the public names so old imports, and pickles that name
``clusterflow.pipeline.<Handle>``, keep working.
"""

import warnings

from clusterflow.stages import *  # noqa: F403
from clusterflow.stages import __all__  # noqa: F401

warnings.warn(
    "clusterflow.pipeline is deprecated; import from clusterflow.stages",
    DeprecationWarning,
    stacklevel=2,
)
