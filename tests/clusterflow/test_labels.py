"""Renumbering cluster ids densely (clusterflow.cluster.labels)."""

import numpy as np

from clusterflow.cluster.labels import compact_labels, compacting_map


def test_compact_labels_closes_the_gaps_in_order_and_keeps_noise():
    labels = np.array([7, -1, 2, 7, 4, 2, -1])
    out = compact_labels(labels)
    assert out.tolist() == [2, -1, 0, 2, 1, 0, -1]
    assert out.dtype == np.int64
    assert labels.tolist() == [7, -1, 2, 7, 4, 2, -1]  # the argument is not changed


def test_compact_labels_of_only_noise_or_nothing():
    assert compact_labels(np.array([-1, -1])).tolist() == [-1, -1]
    assert compact_labels(np.array([], dtype=int)).tolist() == []


def test_compacting_map_sends_absent_ids_to_minus_one():
    table = compacting_map(np.array([1, 3]), 5)
    assert table.tolist() == [-1, 0, -1, 1, -1]
