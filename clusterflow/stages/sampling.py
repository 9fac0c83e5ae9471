"""Which rows each fit sees: the seeded fit samples and the gate's held-out rows.

The gate's held-out rows are left out of every fit (imputer, feature builder, clusterer) and
assigned like new data, so the challenger never sees them. The partitioned (Dask) path calls the
same functions, so both ways fit on the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clusterflow.config import TrainConfig
from clusterflow.stages.handles import Validated

FIT_ROWS = 100_000
"""Above this many training rows (the valid rows but the gate's held-out ones) the imputer and the
feature builder fit on a seeded sample of this size (then transform every row). Below it they see
every training row. A Dask run gathers these same rows to its driver, so both ways give the same
model (see :mod:`clusterflow.partitioned`)."""


def fit_sample(n_rows: int, limit: int, random_state: int) -> np.ndarray | None:
    """Return the sorted positions of a seeded sample of ``limit`` rows, or None for all rows."""
    if n_rows <= limit:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_rows, size=limit, replace=False))


def sweep_rows(n_rows: int, fit_rows: int, random_state: int) -> np.ndarray | None:
    """Return the sorted positions the sweep fits on, or None for all rows."""
    return fit_sample(n_rows, fit_rows, random_state)


def train_fit_rows(train: np.ndarray, n_rows: int, random_state: int) -> np.ndarray | None:
    """Return the rows the imputer and the feature builder are fitted on (None: every row).

    The training rows (every row but the gate's held-out ones), down to a seeded sample of
    :data:`FIT_ROWS` of them; the partitioned path gathers the same rows.
    """
    sample = fit_sample(len(train), FIT_ROWS, random_state)
    rows = train if sample is None else train[sample]
    return None if len(rows) == n_rows else rows


def holdout_rows(validated: Validated, config: TrainConfig) -> np.ndarray:
    """Return the positions (among the valid rows) held out for the gate.

    See :func:`clusterflow.gate.holdout_positions`.
    """
    from clusterflow.gate import holdout_positions

    times = None
    if config.time_column:
        times = pd.read_parquet(validated.valid_path, columns=[config.time_column])
        times = times[config.time_column]
    return holdout_positions(
        validated.n_valid,
        share=config.registry.holdout_share,
        max_rows=config.registry.eval_sample,
        random_state=config.random_state,
        times=times,
    )


def training_rows(validated: Validated, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(held, train)``: the gate's held-out positions among the valid rows, the rest."""
    held = holdout_rows(validated, config)
    return held, np.setdiff1d(np.arange(validated.n_valid), held)


def holdout_settings(config: TrainConfig) -> dict:
    """Return the settings that decide the held-out rows (part of every fitting stage's key)."""
    return {
        "share": config.registry.holdout_share,
        "max_rows": config.registry.eval_sample,
        "time": config.time_column,
    }
