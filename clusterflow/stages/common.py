"""What the stages share: the progress callback's type and Arrow-safe tables.

Picking up a finished stage from the store is :meth:`clusterflow.store.StageStore.cached`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

ProgressFn = Callable[[int, int], None]


def sanitise_for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed Python types become text (Arrow cannot store them mixed)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = out[column]
            out[column] = values.where(values.isna(), values.astype(str))
    return out
