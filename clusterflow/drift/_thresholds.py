"""When a difference between reference and batch counts as drift: :class:`DriftThresholds`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from clusterflow.config import DriftConfig
from clusterflow.errors import ConfigError

__all__ = ["DriftThresholds"]


class DriftThresholds(DriftConfig):
    """When a difference between reference and batch counts as drift.

    The fields, defaults and bounds are :class:`clusterflow.config.DriftConfig`'s (defined once
    there, with a description each; the README's drift table quotes them). This subclass only
    turns an out-of-range value into a :class:`ConfigError` naming the field, as the library's
    other options do.

    Notes
    -----
    ``column_p_value`` is the family-wise level of the per-column tests (Holm) and the level of the
    embedding, cluster-mix and novelty tests. ``column_effect`` is KS D for numeric columns and the
    total variation distance for categorical ones. ``cluster_psi`` reads as usual (< 0.1 stable,
    0.1-0.2 moderate, > 0.2 shifted). ``novelty_share`` is the increase of the novel share, batch
    minus reference; ``quarantine_share`` the increase of the share of rows failing validation,
    batch minus training (checked by :mod:`clusterflow.monitoring`, which sees those rows).
    """

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            fields = sorted({str(e["loc"][0]) for e in err.errors() if e.get("loc")})
            bad = ", ".join(f"{name}={values.get(name)!r}" for name in fields)
            raise ConfigError(
                f"drift thresholds out of range: {bad}",
                hint="p-value in (0, 1), effects and shares in [0, 1], text_auc in [0.5, 1], "
                "min_columns >= 1, cv_folds >= 2",
            ) from err
