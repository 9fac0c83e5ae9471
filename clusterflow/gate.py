"""The challenger gate: a new model replaces the champion only if it is at least as good.

Both models assign the same fixed evaluation sample (a seeded sample of the training rows); each
assignment is scored by the silhouette in that model's own feature space (cosine when a text block
dominates, as in the sweep). The challenger is promoted when its score is at least the champion's
minus the configured tolerance. A champion that cannot read the evaluation sample (other columns:
a different data set) does not block the challenger; the reason says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from clusterflow.errors import ClusterflowError
from clusterflow.model import ClusterModel

GATE_METRIC = "silhouette of the model's own assignment of the evaluation sample"


def evaluation_sample(frame: pd.DataFrame, n: int, random_state: int) -> pd.DataFrame:
    """A seeded sample of ``n`` rows (all rows when fewer)."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=random_state).sort_index()


def gate_score(model: ClusterModel, frame: pd.DataFrame, *, embeddings=None) -> float:
    """Silhouette of ``model``'s assignment of ``frame`` (-1 when fewer than two clusters)."""
    _, _, X = model.feature_matrix(frame, embeddings=embeddings)
    labels, _ = model.assign(X)
    keep = labels >= 0
    if len(np.unique(labels[keep])) < 2 or keep.sum() <= len(np.unique(labels[keep])):
        return -1.0
    metric = getattr(model.clusterer, "metric_", None) or "euclidean"
    if metric not in ("cosine", "euclidean"):
        metric = "euclidean"
    return float(silhouette_score(X[keep], labels[keep], metric=metric))


def decide(
    challenger: ClusterModel,
    champion: ClusterModel | None,
    frame: pd.DataFrame,
    *,
    tolerance: float,
    challenger_embeddings=None,
) -> dict:
    """Compare challenger and champion on ``frame``; return the decision as a dict."""
    new = gate_score(challenger, frame, embeddings=challenger_embeddings)
    if champion is None:
        return {
            "promote": True,
            "reason": "no champion yet",
            "challenger_score": new,
            "champion_score": None,
        }
    try:
        champion.check_columns(frame)
        old = gate_score(champion, frame)
    except ClusterflowError as err:
        return {
            "promote": True,
            "challenger_score": new,
            "champion_score": None,
            "reason": f"the champion cannot score this data ({err.message}); replaced",
        }
    promote = new >= old - tolerance
    verdict = "beats or ties" if promote else "loses to"
    return {
        "promote": promote,
        "challenger_score": new,
        "champion_score": old,
        "reason": f"challenger {new:.4f} {verdict} champion {old:.4f} (tolerance {tolerance})",
    }
