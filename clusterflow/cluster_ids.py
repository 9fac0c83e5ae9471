"""Published cluster ids: the clusterer's raw ids renumbered so they stay stable across retrains.

A model that follows a champion carries a cluster map (raw id -> published id, from
:func:`clusterflow.gate.match_clusters`); :func:`renumber` applies it wherever raw ids meet the
outside world (served predictions, the drift reference, a run's assignments), and
:func:`stage_with_cluster_map` writes it into a copy of a saved model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd


def renumber(labels: np.ndarray, mapping: dict) -> np.ndarray:
    """Return ``labels`` with every id in ``mapping`` replaced by its value (-1, noise, stays -1).

    Ids absent from ``mapping`` keep their number; keys and values may be strings of integers
    (a map read back from JSON).
    """
    ids = {int(k): int(v) for k, v in (mapping or {}).items()}
    labels = np.asarray(labels, dtype=int)
    return np.array([ids.get(int(c), int(c)) if c >= 0 else -1 for c in labels], dtype=int)


def stage_with_cluster_map(source: str | Path, target: str | Path, mapping: dict[int, int]) -> Path:
    """Copy a saved model folder to ``target`` with ``mapping`` as its cluster map.

    The drift reference kept with the model (``reference.parquet``) is renumbered too, so the
    monitor compares published ids with published ids. ``source`` is left untouched (it lives in
    the content-addressed stage store and may be shared by later runs).
    """
    source, target = Path(source), Path(target)
    shutil.copytree(source, target)
    spec_path = target / "spec.json"
    spec = json.loads(spec_path.read_text())
    spec["cluster_map"] = {str(int(k)): int(v) for k, v in sorted(mapping.items())}
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    reference = target / "reference.parquet"
    if reference.exists() and mapping:
        ref = pd.read_parquet(reference)
        if "__cluster" in ref:
            ref["__cluster"] = renumber(ref["__cluster"].to_numpy(dtype=int), mapping)
            ref.to_parquet(reference, index=False)
    return target
