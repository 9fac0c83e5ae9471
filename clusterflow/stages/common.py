"""What the stages share: picking up a finished stage from the store, and Arrow-safe tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from clusterflow.store import StageStore

ProgressFn = Callable[[int, int], None]

HandleT = TypeVar("HandleT")


def reused_handle(
    store: StageStore, stage: str, key: str, handle: Callable[..., HandleT]
) -> HandleT | None:
    """Return the handle of ``stage`` under ``key`` if the store holds it complete, else None.

    The handle is rebuilt from the ``meta.json`` the stage wrote, marked ``reused=True``.
    """
    if not store.done(stage, key):
        return None
    meta: dict[str, Any] = json.loads((store.path(stage, key) / "meta.json").read_text())
    return handle(**meta, reused=True)


def sanitise_for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed Python types become text (Arrow cannot store them mixed)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = out[column]
            out[column] = values.where(values.isna(), values.astype(str))
    return out
