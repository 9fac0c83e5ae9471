"""The embedding, cluster-mix and novelty views of a drift comparison, each with its verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from clusterflow.drift._evidence import ClusterMixDrift, EmbeddingDrift, NoveltyDrift
from clusterflow.drift._sample import DriftSample
from clusterflow.drift._statistics import (
    counts_test,
    domain_classifier_auc,
    psi,
    share_rose,
)
from clusterflow.drift._thresholds import DriftThresholds
from clusterflow.errors import EmbeddingError

__all__ = ["MIN_EMBEDDING_ROWS"]

#: Fewer rows than this on either side and the domain classifier is not run.
MIN_EMBEDDING_ROWS = 20


def _embedding_view(
    ref: np.ndarray | None, new: np.ndarray | None, th: DriftThresholds, random_state: int
) -> EmbeddingDrift:
    if ref is None or new is None:
        return _not_tested(
            th, "no text embeddings on " + ("either side" if ref is new else "one side")
        )
    if ref.shape[1] != new.shape[1]:
        raise EmbeddingError(
            f"embedding dimensions differ: reference {ref.shape[1]}, batch {new.shape[1]}",
            hint="embed the batch with the champion's embedding model",
        )
    if min(len(ref), len(new)) < MIN_EMBEDDING_ROWS:
        return _not_tested(th, f"fewer than {MIN_EMBEDDING_ROWS} rows on one side: not tested")
    found = domain_classifier_auc(
        ref,
        new,
        max_rows=th.max_embedding_rows,
        cv_folds=th.cv_folds,
        random_state=random_state,
    )
    return EmbeddingDrift(
        method="domain_classifier_logreg_cv_auc",
        auc=found["auc"],
        p_value=found["p_value"],
        threshold=th.text_auc,
        drifted=bool(found["auc"] > th.text_auc and found["p_value"] < th.column_p_value),
        auc_std=found["auc_std"],
        rows_per_side=found["rows_per_side"],
        cv_folds=found["cv_folds"],
    )


def _not_tested(th: DriftThresholds, note: str) -> EmbeddingDrift:
    """Return the text view of a comparison that does not run the classifier, saying why."""
    return EmbeddingDrift(
        method="none", auc=None, p_value=None, threshold=th.text_auc, drifted=False, note=note
    )


def _cluster_view(
    ref: np.ndarray, new: np.ndarray, th: DriftThresholds, random_state: int = 0
) -> ClusterMixDrift:
    ref_counts = pd.Series(ref).value_counts()
    new_counts = pd.Series(new).value_counts()
    ids = sorted(set(ref_counts.index) | set(new_counts.index))
    rc = ref_counts.reindex(ids, fill_value=0).to_numpy(dtype=float)
    nc = new_counts.reindex(ids, fill_value=0).to_numpy(dtype=float)
    index = psi(rc, nc, epsilon=th.psi_epsilon)
    found = counts_test(
        ref_counts.rename(str),
        new_counts.rename(str),
        level=th.column_p_value,
        random_state=random_state,
    )
    p_value = found.p_value
    ref_prop = rc / rc.sum()
    new_prop = nc / nc.sum()
    return ClusterMixDrift(
        ids=[int(i) for i in ids],
        reference={str(int(i)): float(v) for i, v in zip(ids, ref_prop, strict=True)},
        batch={str(int(i)): float(v) for i, v in zip(ids, new_prop, strict=True)},
        psi=index,
        js=float(jensenshannon(rc / rc.sum(), nc / nc.sum(), base=2)),
        p_value=p_value,
        threshold=th.cluster_psi,
        drifted=bool(
            p_value is not None and index > th.cluster_psi and p_value < th.column_p_value
        ),
        test=None if found.test == "chi2_contingency" else found.test,
        note=found.note,
    )


def _novelty_view(ref: DriftSample, new: DriftSample, th: DriftThresholds) -> NoveltyDrift:
    n_ref, n_new = len(ref.novel), len(new.novel)
    ref_share = float(ref.novel.mean())
    new_share = float(new.novel.mean())
    # A reference with no novel row would make any single novel batch row "impossible".
    p_value, drifted = share_rose(
        int(new.novel.sum()),
        n_new,
        ref_share,
        floor=1.0 / n_ref,
        min_rise=th.novelty_share,
        level=th.column_p_value,
    )
    mean_ref = _finite_mean(ref.distances)
    mean_new = _finite_mean(new.distances)
    return NoveltyDrift(
        reference_novel_share=ref_share,
        batch_novel_share=new_share,
        reference_noise_share=float(np.mean(ref.clusters == -1)),
        batch_noise_share=float(np.mean(new.clusters == -1)),
        reference_mean_distance=mean_ref,
        batch_mean_distance=mean_new,
        distance_ratio=mean_new / mean_ref if mean_ref and mean_new is not None else None,
        p_value=p_value,
        threshold=th.novelty_share,
        drifted=drifted,
    )


def _finite_mean(x: np.ndarray) -> float | None:
    # Noise rows may carry an infinite distance; the mean describes the rows that have one.
    finite = x[np.isfinite(x)]
    return float(np.mean(finite)) if finite.size else None
