"""The MLflow calls: tracking store, runs, model versions, aliases, orphans, loading models.

Each function is one step against MLflow; the order they run in during a training belongs to
:func:`clusterflow.registration.register_training`. The registry is addressed by alias only
(stages are deprecated since MLflow 2.9): ``champion`` is what scoring and monitoring load,
``challenger`` marks a version that lost the gate. Nothing here sets a tracking URI at import time;
:func:`resolve_tracking_uri` is called by the entry points.
"""

from clusterflow.model_registry._loading import (
    load_champion,
    load_cluster_model,
    load_version,
    recorded_train_config,
)
from clusterflow.model_registry._orphans import (
    OWNER_TAG,
    STALE_PENDING_S,
    STATE_TAG,
    clean_orphans,
    owner,
)
from clusterflow.model_registry._store import (
    EXPERIMENT_KIND,
    connect,
    create_run,
    ensure_experiment,
    flat_params,
    redact,
    registry_lock,
    resolve_tracking_uri,
)
from clusterflow.model_registry._versions import (
    CHALLENGER,
    CHAMPION,
    champion_version,
    clear_alias,
    delete_version,
    log_model_version,
    pip_requirements,
    set_alias,
    set_version_tag,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EXPERIMENT_KIND",
    "OWNER_TAG",
    "STALE_PENDING_S",
    "STATE_TAG",
    "champion_version",
    "clean_orphans",
    "clear_alias",
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
    "recorded_train_config",
    "redact",
    "registry_lock",
    "resolve_tracking_uri",
    "set_alias",
    "set_version_tag",
]
