"""Renumbering cluster ids: the ids in use become 0..n-1 in increasing order, noise stays -1.

A clusterer may leave gaps in its ids (a mixture component that wins no row, HDBSCAN's clusters
after a subsample); the sweep table, the centres and the published model number them densely.
"""

from __future__ import annotations

import numpy as np

__all__ = ["compact_labels", "compacting_map"]


def compacting_map(present: np.ndarray, size: int) -> np.ndarray:
    """Return the table that renumbers the ids ``present`` to 0..n-1 in their order.

    Parameters
    ----------
    present : ndarray of int
        The ids in use, sorted and unique (as :func:`numpy.unique` returns them).
    size : int
        Length of the table: one more than the largest id it may be asked about.

    Returns
    -------
    ndarray of int64
        ``table[present[i]] == i``; every other id maps to -1.
    """
    table = np.full(size, -1, dtype=np.int64)
    table[present] = np.arange(len(present))
    return table


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """Return ``labels`` with its cluster ids renumbered 0..n-1 in increasing order.

    Parameters
    ----------
    labels : ndarray of int
        Cluster ids, -1 for noise.

    Returns
    -------
    ndarray of int64
        The same partition with dense ids; noise stays -1.
    """
    member = labels >= 0
    table = compacting_map(np.unique(labels[member]), int(labels.max(initial=-1)) + 1)
    compact = np.full(labels.shape, -1, dtype=np.int64)
    compact[member] = table[labels[member]]
    return compact
