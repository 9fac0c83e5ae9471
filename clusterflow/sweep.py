"""The sweep's old address: :mod:`clusterflow.cluster.sweep` and its neighbours hold the code.

Benchmarks, tests and user code import ``ClusterSweep``, ``default_k_max`` and ``k_grid`` from
here; models pickled before the split refer to ``clusterflow.sweep._Model`` and
``clusterflow.sweep._Reducer``, which resolve to the classes that replaced them.
"""

from __future__ import annotations

from clusterflow.cluster.algorithms import Candidate
from clusterflow.cluster.evidence import Reducer
from clusterflow.cluster.grid import default_k_max, k_grid
from clusterflow.cluster.metrics import RESULT_COLUMNS
from clusterflow.cluster.sweep import ALGORITHMS, ClusterSweep

__all__ = ["ALGORITHMS", "RESULT_COLUMNS", "ClusterSweep", "default_k_max", "k_grid"]

# Names that models saved before the split refer to.
_Model = Candidate
_Reducer = Reducer
