"""The challenger gate and the cluster-id alignment between successive champions.

Gate
----
Both models assign the same fixed evaluation sample (a seeded sample of the challenger's training
rows, :func:`evaluation_sample`). Each assignment is scored by the silhouette in that model's own
feature space (cosine when the sweep chose it, else Euclidean): :data:`GATE_METRIC`. The challenger
is promoted when ``challenger >= champion - tolerance``. A champion that cannot read the
evaluation sample (other columns: a different data set) does not block the challenger; the reason
says so.

Alignment
---------
When a model follows a champion, its clusters are matched to the champion's by the Hungarian
assignment (:func:`scipy.optimize.linear_sum_assignment`) on the co-assignment table of the
evaluation sample, and renumbered, so cluster 3 still means the same group after a retrain.
Clusters without a partner get ids never used by the champion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import silhouette_score

from clusterflow.errors import ClusterflowError
from clusterflow.model import ClusterModel

GATE_METRIC = "silhouette of the model's own assignment of the evaluation sample"


@dataclass(frozen=True)
class SampleAssignment:
    """One model's view of the evaluation sample.

    Attributes
    ----------
    labels : ndarray of int
        Cluster ids as the model reports them (its ``cluster_map`` applied; -1 = noise).
    raw : ndarray of int
        Cluster ids before the model's ``cluster_map`` (the clusterer's own numbering).
    score : float
        The gate metric (:data:`GATE_METRIC`), -1 when fewer than two clusters are used.
    """

    labels: np.ndarray
    raw: np.ndarray
    score: float


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger replaces the champion, and why (logged as ``gate.json``)."""

    promote: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    champion_version: str | None = None
    cluster_map: dict[int, int] = field(default_factory=dict)
    matched_share: float | None = None

    def to_dict(self) -> dict:
        """JSON-safe view (cluster map keys as strings)."""
        return {
            "promote": self.promote,
            "reason": self.reason,
            "metric": GATE_METRIC,
            "challenger_score": self.challenger_score,
            "champion_score": self.champion_score,
            "champion_version": self.champion_version,
            "cluster_map": {str(k): int(v) for k, v in self.cluster_map.items()},
            "matched_share": self.matched_share,
        }


def evaluation_sample(frame: pd.DataFrame, n: int, random_state: int) -> pd.DataFrame:
    """Return a seeded sample of ``n`` rows of ``frame`` (all rows when fewer), in index order."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=random_state).sort_index()


def assign_sample(
    model: ClusterModel, frame: pd.DataFrame, *, embeddings: np.ndarray | None = None
) -> SampleAssignment:
    """Assign ``frame`` with ``model`` and score the assignment by the gate metric.

    Raises
    ------
    ValidationFailed
        If ``frame`` lacks a column the model reads.
    """
    model.check_columns(frame)
    _, _, X = model.feature_matrix(frame, embeddings=embeddings)
    raw = np.asarray(model.clusterer.predict(X), dtype=int)
    labels = model.relabel(raw)
    return SampleAssignment(labels=labels, raw=raw, score=_silhouette(model, X, labels))


def _silhouette(model: ClusterModel, X: np.ndarray, labels: np.ndarray) -> float:
    keep = labels >= 0
    n_clusters = len(np.unique(labels[keep]))
    if n_clusters < 2 or keep.sum() <= n_clusters:
        return -1.0
    metric = getattr(model.clusterer, "metric_", None) or "euclidean"
    if metric not in ("cosine", "euclidean"):
        metric = "euclidean"
    return float(silhouette_score(X[keep], labels[keep], metric=metric))


def gate_score(model: ClusterModel, frame: pd.DataFrame, *, embeddings=None) -> float:
    """Return the gate metric of ``model`` on ``frame`` (-1 when fewer than two clusters)."""
    return assign_sample(model, frame, embeddings=embeddings).score


def match_clusters(
    new_raw: np.ndarray, old_labels: np.ndarray, *, reserved: set[int] | frozenset = frozenset()
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

    Returns
    -------
    mapping : dict
        Raw new id -> published id, for every cluster id in ``new_raw`` (noise excluded).
    matched_share : float
        Share of the rows both models cluster that keep their id under the mapping.
    """
    new_raw = np.asarray(new_raw, dtype=int)
    old_labels = np.asarray(old_labels, dtype=int)
    if new_raw.shape != old_labels.shape:
        raise ValueError(f"label arrays differ in shape: {new_raw.shape} vs {old_labels.shape}")
    new_ids = np.unique(new_raw[new_raw >= 0])
    both = (new_raw >= 0) & (old_labels >= 0)
    old_ids = np.unique(old_labels[both])
    mapping: dict[int, int] = {}
    if len(new_ids) and len(old_ids):
        table = np.zeros((len(new_ids), len(old_ids)), dtype=np.int64)
        rows = np.searchsorted(new_ids, new_raw[both])
        cols = np.searchsorted(old_ids, old_labels[both])
        np.add.at(table, (rows, cols), 1)
        r, c = linear_sum_assignment(table, maximize=True)
        for i, j in zip(r, c, strict=True):
            if table[i, j] > 0:
                mapping[int(new_ids[i])] = int(old_ids[j])
    taken = set(reserved) | set(int(v) for v in old_labels[old_labels >= 0]) | set(mapping.values())
    next_id = max(taken, default=-1) + 1
    for cid in new_ids:
        if int(cid) not in mapping:
            mapping[int(cid)] = next_id
            next_id += 1
    kept = both.sum()
    share = None
    if kept:
        mapped = np.array([mapping[int(c)] for c in new_raw[both]])
        share = float(np.mean(mapped == old_labels[both]))
    return mapping, (share if share is not None else 0.0)


def decide(
    challenger: ClusterModel,
    champion: ClusterModel | None,
    frame: pd.DataFrame,
    *,
    tolerance: float,
    challenger_embeddings: np.ndarray | None = None,
    champion_version: str | None = None,
) -> GateDecision:
    """Compare challenger and champion on ``frame`` and align the challenger's cluster ids.

    Parameters
    ----------
    challenger, champion : ClusterModel
        The new model and the current champion (None when there is none).
    frame : DataFrame
        The fixed evaluation sample (raw rows).
    tolerance : float
        The challenger is promoted when its score is at least the champion's minus this.
    challenger_embeddings : ndarray, optional
        Precomputed text vectors of ``frame`` (reused for the champion when it embeds the same way).
    champion_version : str, optional
        Recorded in the decision.

    Returns
    -------
    GateDecision
        With ``cluster_map``: the challenger's raw ids -> ids aligned to the champion's (identity
        when there is no comparable champion).
    """
    new = assign_sample(challenger, frame, embeddings=challenger_embeddings)
    identity = {int(c): int(c) for c in np.unique(new.raw[new.raw >= 0])}
    if champion is None:
        reason = (
            "no champion yet"
            if champion_version is None
            else f"the champion (version {champion_version}) cannot be loaded; replaced"
        )
        return GateDecision(True, reason, new.score, None, champion_version, identity)
    try:
        same_text = champion.embedder is not None and champion.embedder == challenger.embedder
        old = assign_sample(
            champion, frame, embeddings=challenger_embeddings if same_text else None
        )
    except ClusterflowError as err:
        return GateDecision(
            True,
            f"the champion (version {champion_version}) cannot score this data "
            f"({err.message}); replaced",
            new.score,
            None,
            champion_version,
            identity,
        )
    mapping, share = match_clusters(new.raw, old.labels, reserved=champion.published_ids())
    promote = new.score >= old.score - tolerance
    verdict = "beats or ties" if promote else "loses to"
    return GateDecision(
        promote,
        f"challenger {new.score:.4f} {verdict} champion version {champion_version} "
        f"{old.score:.4f} (tolerance {tolerance}; metric: {GATE_METRIC})",
        new.score,
        old.score,
        champion_version,
        mapping,
        share,
    )
