"""The training stages as plain functions over small handles (paths and hashes), no Prefect.

Every stage reads its inputs from files, writes its outputs into the :class:`StageStore` under a
key that hashes its inputs and settings, and returns a small frozen handle. A stage whose key is
already complete is not computed again, so a rerun on the same data and settings (or a run resumed
after a crash) only redoes what is missing.

- :mod:`~clusterflow.stages.handles`: the handles (``Snapshot``, ``Validated``, ``Imputed``,
  ``Embedded``, ``Swept``);
- :mod:`~clusterflow.stages.intake`: ``ingest`` and ``validate``;
- :mod:`~clusterflow.stages.imputation`: ``impute`` and the imputer's factory;
- :mod:`~clusterflow.stages.embedding`: ``embed`` and the embedder a model records;
- :mod:`~clusterflow.stages.clustering`: ``sweep`` and the feature and sweep factories;
- :mod:`~clusterflow.stages.artifacts`: what the sweep keeps beside the model (drift reference,
  plots, cluster cards);
- :mod:`~clusterflow.stages.sampling`: which rows each fit sees (shared with the Dask path);
- :mod:`~clusterflow.stages.common`: the progress callback's type, Arrow-safe tables.

Each stage but ``ingest`` goes through :meth:`~clusterflow.store.StageStore.cached`: reuse the
stored output under the key, or compute it into a temporary folder that becomes the output.

The wiring of the stages lives in ``flows/`` (one Prefect task per stage in ``tasks/``).
"""

from clusterflow.stages.artifacts import REFERENCE_ROWS, missing_shares
from clusterflow.stages.clustering import (
    SUMMARY_METRICS,
    check_room,
    make_features,
    make_sweep,
    sweep,
)
from clusterflow.stages.common import ProgressFn
from clusterflow.stages.embedding import embed, embedder_spec
from clusterflow.stages.handles import (
    Embedded,
    Imputed,
    Snapshot,
    Swept,
    Validated,
    handle_dict,
)
from clusterflow.stages.imputation import check_fit_rows, impute, load_imputer, make_imputer
from clusterflow.stages.intake import ingest, roles_for, validate
from clusterflow.stages.sampling import (
    FIT_ROWS,
    fit_sample,
    holdout_settings,
    sweep_rows,
    train_fit_rows,
    training_rows,
)

__all__ = [
    "FIT_ROWS",
    "REFERENCE_ROWS",
    "SUMMARY_METRICS",
    "Embedded",
    "Imputed",
    "ProgressFn",
    "Snapshot",
    "Swept",
    "Validated",
    "missing_shares",
    "check_fit_rows",
    "embed",
    "embedder_spec",
    "fit_sample",
    "handle_dict",
    "holdout_settings",
    "impute",
    "ingest",
    "load_imputer",
    "check_room",
    "make_features",
    "make_imputer",
    "make_sweep",
    "roles_for",
    "sweep",
    "sweep_rows",
    "train_fit_rows",
    "training_rows",
    "validate",
]
