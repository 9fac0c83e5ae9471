"""Cluster-id alignment between successive models.

When a model follows a champion, its clusters are matched to the champion's by the Hungarian
assignment (:func:`scipy.optimize.linear_sum_assignment`) on the co-assignment table of the
held-out rows, and renumbered, so cluster 3 still means the same group after a retrain.
Clusters without a partner get ids never used by the champion.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_clusters"]


def match_clusters(
    new_raw: np.ndarray,
    old_labels: np.ndarray,
    *,
    reserved: set[int] | frozenset = frozenset(),
    new_ids: Iterable[int] = (),
) -> tuple[dict[int, int], float]:
    """Map the new model's raw cluster ids onto the old model's ids.

    Parameters
    ----------
    new_raw : ndarray of int
        The new model's raw ids for the evaluation rows (-1 = noise, never mapped).
    old_labels : ndarray of int
        The old model's reported ids for the same rows.
    reserved : set of int
        Ids the old model ever used (also those absent from the sample): an unmatched new cluster
        never gets one of them.
    new_ids : iterable of int
        Every raw id the new model has. A cluster no evaluation row falls in is unmatched and
        gets an unused id too; left out of the map, it would keep its raw number, which may be
        the id a matched cluster was given (two groups published under one id).

    Returns
    -------
    mapping : dict
        Raw new id -> published id, for every id in ``new_raw`` or ``new_ids`` (noise excluded).
    matched_share : float
        Share of the rows both models cluster that keep their id under the mapping.
    """
    new_raw = np.asarray(new_raw, dtype=int)
    old_labels = np.asarray(old_labels, dtype=int)
    if new_raw.shape != old_labels.shape:
        raise ValueError(f"label arrays differ in shape: {new_raw.shape} vs {old_labels.shape}")
    seen = np.unique(new_raw[new_raw >= 0])
    both = (new_raw >= 0) & (old_labels >= 0)
    old_ids = np.unique(old_labels[both])
    mapping: dict[int, int] = {}
    if len(seen) and len(old_ids):
        table = np.zeros((len(seen), len(old_ids)), dtype=np.int64)
        rows = np.searchsorted(seen, new_raw[both])
        cols = np.searchsorted(old_ids, old_labels[both])
        np.add.at(table, (rows, cols), 1)
        r, c = linear_sum_assignment(table, maximize=True)
        for i, j in zip(r, c, strict=True):
            if table[i, j] > 0:
                mapping[int(seen[i])] = int(old_ids[j])
    taken = set(reserved) | set(int(v) for v in old_labels[old_labels >= 0]) | set(mapping.values())
    next_id = max(taken, default=-1) + 1
    for cid in sorted({int(c) for c in seen} | {int(c) for c in new_ids if c >= 0}):
        if cid not in mapping:
            mapping[cid] = next_id
            next_id += 1
    kept = both.sum()
    share = None
    if kept:
        mapped = np.array([mapping[int(c)] for c in new_raw[both]])
        share = float(np.mean(mapped == old_labels[both]))
    return mapping, (share if share is not None else 0.0)
