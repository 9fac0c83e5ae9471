"""Options of the selection rule that the quality benchmark evaluates."""

from __future__ import annotations

import pandas as pd
import pytest

from clusterflow.cluster.selection import SelectionParams, select
from clusterflow.errors import ConfigError


def _table(rows: list[tuple], share: float) -> pd.DataFrame:
    cols = ["algorithm", "k", "silhouette", "evidence", "stability", "noise_share", "min_share"]
    return pd.DataFrame(rows, columns=cols).assign(evidence_share=share)


def test_partitions_alone_propose_by_silhouette_when_the_likelihood_speaks_for_too_little() -> None:
    # digits' case: a mixture's broad component around a tight one wins the silhouette.
    rows = [
        ("gmm", 2, 0.28, 4.6, 0.9, 0.0, 0.09),
        ("kmeans", 10, 0.15, 6.4, 0.8, 0.0, 0.02),
        ("agglomerative", 9, 0.14, 6.1, 0.8, 0.0, 0.02),
    ]
    low = _table(rows, share=0.5)
    chosen = select(low, k_min=2, k_max=20).chosen
    assert (chosen.algorithm, chosen.k) == ("kmeans", 10)
    every = SelectionParams(silhouette_from="all")
    assert select(low, k_min=2, k_max=20, params=every).chosen.algorithm == "gmm"
    # Where the evidence proposes, the option changes nothing.
    high = _table(rows, share=0.9)
    assert select(high, k_min=2, k_max=20, params=every) == select(high, k_min=2, k_max=20)
    # Under 80% of the variance in the reduced view (tissues, leaves: 75-77%) the silhouette
    # proposes; from 80% (penguins, hawks: 83%) the evidence does.
    assert "highest silhouette" in select(_table(rows, share=0.77), k_min=2, k_max=20).rule
    assert "highest evidence" in select(_table(rows, share=0.83), k_min=2, k_max=20).rule
    with pytest.raises(ConfigError, match="silhouette_from"):
        select(low, k_min=2, k_max=20, params=SelectionParams(silhouette_from="gmm"))
