"""The metrics of one sweep candidate: one row of the sweep table.

Every candidate is judged on the same rows (:class:`Judge`): silhouette on a fixed sample with
precomputed distances, Davies-Bouldin, Calinski-Harabasz and inertia on every assigned row, BIC
for the mixture, the labeling's evidence in the reduced space, the share of its smallest cluster,
and stability and prediction strength against refits on 80 % subsamples of a fixed row set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from clusterflow.cluster.algorithms import Algorithm, Candidate, Space, Subsample, centers_of
from clusterflow.cluster.columns import RESULT_COLUMNS
from clusterflow.cluster.evidence import prediction_strength, score_reduced
from clusterflow.cluster.labels import compact_labels

__all__ = ["RESULT_COLUMNS", "Judge", "favourites", "knee", "score_candidate"]


@dataclass(frozen=True)
class Judge:
    """The fixed evaluation rows and thresholds every candidate of one sweep is scored with."""

    sil_idx: np.ndarray
    """Rows of the silhouette sample."""
    D_sil: np.ndarray
    """Pairwise distances of the silhouette sample (the sweep's metric)."""
    stab_idx: np.ndarray
    """Rows on which stability is measured."""
    resamples: int
    max_noise: float
    min_stability: float
    random_state: int


def _labelled(
    model: Candidate, Xw: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Labels numbered 0..k-1 (noise stays -1) and the centres they refer to."""
    if model.gmm is None:
        return labels, model.centers
    return compact_labels(labels), centers_of(Xw, labels)[0]


def score_candidate(
    family: Algorithm, param: int, model: Candidate, space: Space, judge: Judge, noise: float
) -> dict[str, Any]:
    """Return the candidate's row of the sweep table (``seconds`` holds the scoring time)."""
    t0 = time.perf_counter()
    Xw = space.X
    row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS, float("nan"))
    row.update(algorithm=family.name, param=int(param), noise_share=noise, selected=False)
    if model.gmm is None and len(model.centers) < 2:
        row.update(k=len(model.centers), viable=False, seconds=time.perf_counter() - t0)
        return row
    raw = model.predict(Xw)
    present = np.unique(raw[raw >= 0])
    row["k"] = len(present)
    if len(present) < 2:
        row.update(viable=False, seconds=time.perf_counter() - t0)
        return row
    labels, centers = _labelled(model, Xw, raw)
    assigned = labels >= 0
    lab_a, Xa = labels[assigned], Xw[assigned]
    row["inertia"] = float(((Xa - centers[lab_a]) ** 2).sum())
    row["davies_bouldin"] = float(davies_bouldin_score(Xa, lab_a))
    row["calinski_harabasz"] = float(calinski_harabasz_score(Xa, lab_a))
    s_lab = labels[judge.sil_idx]
    keep = s_lab >= 0
    if len(np.unique(s_lab[keep])) >= 2 and keep.sum() > len(np.unique(s_lab[keep])):
        D = judge.D_sil[np.ix_(keep, keep)]
        row["silhouette"] = float(silhouette_score(D, s_lab[keep], metric="precomputed"))
    if model.gmm is not None:
        row["bic"] = float(model.gmm.bic(space.Z.astype(np.float64)))
    row["min_share"] = float(np.bincount(lab_a).min() / len(labels))
    row["evidence"] = score_reduced(space.Z, labels)
    row["evidence_share"] = space.reducer.explained
    row["stability"], row["prediction_strength"] = stability(
        family, param, space, judge, labels[judge.stab_idx]
    )
    row["usable"] = bool(noise <= judge.max_noise and np.isfinite(row["silhouette"]))
    row["viable"] = bool(row["usable"] and not (row["stability"] < judge.min_stability))
    row["seconds"] = time.perf_counter() - t0
    return row


def stability(
    family: Algorithm, param: int, space: Space, judge: Judge, reference: np.ndarray
) -> tuple[float, float]:
    """Mean ARI and prediction strength of the candidate against refits on 80 % subsamples."""
    if judge.resamples <= 0:
        return float("nan"), float("nan")
    rows = space.X[judge.stab_idx]
    rng = np.random.default_rng(judge.random_state + 7919)
    scores, strengths = [], []
    for b in range(judge.resamples):
        sub = np.sort(rng.choice(len(rows), int(0.8 * len(rows)), replace=False))
        seed = judge.random_state + 1 + b
        labels = family.refit(space, param, Subsample(b, seed, rows[sub], rows))
        if labels is None:  # the refit found no cluster at all
            scores.append(0.0)
            strengths.append(0.0)
            continue
        scores.append(adjusted_rand_score(reference, labels))
        strengths.append(prediction_strength(reference, labels))
    return float(np.mean(scores)), float(np.mean(strengths))


def knee(results: pd.DataFrame, algorithm: str) -> int | None:
    """Return the knee of ``algorithm``'s inertia curve over k (``kneed``), or None."""
    from kneed import KneeLocator

    part = results[(results["algorithm"] == algorithm) & results["inertia"].notna()]
    part = part.groupby("k")["inertia"].min().sort_index()
    if len(part) < 3:
        return None
    found = KneeLocator(
        part.index.to_numpy(), part.to_numpy(), curve="convex", direction="decreasing"
    ).knee
    return None if found is None else int(found)


def favourites(viable: pd.DataFrame, k: int, algorithm: str, knee_k: int | None) -> list[str]:
    """Metrics whose own favourite k differs from the chosen ``k``, and the inertia knee."""
    best = {
        "silhouette": viable["silhouette"].idxmax(),
        "davies_bouldin": viable["davies_bouldin"].idxmin(),
        "calinski_harabasz": viable["calinski_harabasz"].idxmax(),
    }
    if viable["stability"].notna().any():
        best["stability"] = viable["stability"].idxmax()
    gmm_rows = viable[viable["algorithm"] == "gmm"]
    if gmm_rows["bic"].notna().any():
        best["bic"] = gmm_rows["bic"].idxmin()
    notes = [
        f"{metric} prefers {viable.loc[idx, 'algorithm']} k={int(viable.loc[idx, 'k'])}"
        for metric, idx in best.items()
        if int(viable.loc[idx, "k"]) != k
    ]
    if knee_k is not None and knee_k != k:
        notes.append(f"the inertia knee of {algorithm} is at k={knee_k}")
    return notes
