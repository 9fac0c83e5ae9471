"""The champion gate, and the cluster-id alignment between successive champions.

Gate
----
A seeded share of the valid training rows is held out before the sweep (:func:`holdout_positions`;
the most recent rows when the data has a time column): neither the feature builder nor the
clusterer of the challenger sees them. Both models assign those rows, and both assignments are
scored in *one* feature space, the challenger's, by the evidence the selection rule uses to
choose k (:data:`labeling_score`), computed out of sample: each model's clusters get their
Gaussians from a seeded sample of the training rows (at most :data:`REFERENCE_ROWS`) as that
model labels them, and the held-out rows are scored under them. On held-out rows no parameter
penalty is needed, so the verdict does not depend on how many rows were held out (in sample,
the BIC penalty per row on 52 held-out penguins preferred k=2 to k=3). The difference
(challenger - champion) is bootstrapped over the held-out rows; the challenger is promoted only
when the lower end of its 95% interval is above zero. A tie keeps the champion (no churn). A
champion that cannot score the new data (other columns) is replaced only when the run asks for
it (``registry.replace_incompatible``). For text (the silhouette regime of the evidence) the
held-out rows' silhouette is compared.

Alignment
---------
When a model follows a champion, its clusters are matched to the champion's by the Hungarian
assignment (:func:`scipy.optimize.linear_sum_assignment`) on the co-assignment table of the
held-out rows, and renumbered, so cluster 3 still means the same group after a retrain.
Clusters without a partner get ids never used by the champion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, pairwise_distances, silhouette_score

from clusterflow.cluster.evidence import labeling_score as _selection_evidence
from clusterflow.errors import ClusterflowError
from clusterflow.model import ClusterModel

MIN_HOLDOUT = 30
"""Fewer held-out rows than this give no gate evidence: a 95% bootstrap interval of a score over
fewer rows is too wide to decide anything, so nothing is held out and a champion stays."""

CONFIDENCE = 0.95
"""Two-sided level of the bootstrap interval of (challenger - champion)."""

REFERENCE_ROWS = 5000
"""Most training rows the held-out rows' Gaussians are fitted on (a seeded sample)."""


class ScoreFn(Protocol):
    """How well ``labels`` group the rows of ``X`` (higher is better, comparable across k)."""

    def __call__(self, X: np.ndarray, labels: np.ndarray, *, random_state: int = 0) -> float:
        """Return the score of ``labels`` on the rows of ``X``."""
        ...


def provisional_labeling_score(
    X: np.ndarray, labels: np.ndarray, *, random_state: int = 0
) -> float:
    """Silhouette of ``labels`` in ``X`` (noise rows left out; -1 below two clusters).

    PROVISIONAL: stands in for the selection rule's evidence until
    ``clusterflow.cluster.evidence.labeling_score`` exists (see :data:`labeling_score`).
    """
    labels = np.asarray(labels, dtype=int)
    keep = labels >= 0
    n_clusters = len(np.unique(labels[keep]))
    if n_clusters < 2 or keep.sum() <= n_clusters:
        return -1.0
    return float(silhouette_score(X[keep], labels[keep]))


# The gate scores by the evidence the selection rule uses to choose k (one quantity for both, so
# the sweep and the gate cannot disagree about which labeling is better).
labeling_score: ScoreFn = _selection_evidence


def score_name(score: ScoreFn) -> str:
    """Qualified name of a score function (recorded in gate.json)."""
    return f"{getattr(score, '__module__', '?')}.{getattr(score, '__qualname__', repr(score))}"


class Outcome(StrEnum):
    """How the gate decided."""

    FIRST = "first"  # no champion yet: promoted
    BETTER = "better"  # interval of (challenger - champion) above zero: promoted
    TIE = "tie"  # interval contains zero: the champion stays
    WORSE = "worse"  # interval below zero: the champion stays
    INCOMPATIBLE = "incompatible"  # champion cannot score the data: replaced only when asked
    UNLOADABLE = "unloadable"  # champion cannot be loaded: replaced
    NO_EVIDENCE = "no-evidence"  # too few held-out rows to compare: the champion stays


def reference_positions(n_rows: int, held: np.ndarray, *, random_state: int) -> np.ndarray:
    """Return sorted positions of the training rows the gate fits its Gaussians on.

    Every row not in ``held``, down to a seeded sample of :data:`REFERENCE_ROWS`.
    """
    train = np.setdiff1d(np.arange(n_rows), held)
    if len(train) <= REFERENCE_ROWS:
        return train
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(train, size=REFERENCE_ROWS, replace=False))


def holdout_positions(
    n_rows: int,
    *,
    share: float,
    max_rows: int,
    random_state: int,
    times: pd.Series | None = None,
) -> np.ndarray:
    """Return the sorted positions of the rows held out for the gate.

    ``round(share * n_rows)`` rows, at most ``max_rows``; none when that is below
    :data:`MIN_HOLDOUT`. With ``times`` (one value per row) the most recent rows are held out
    (rows without a readable time count as oldest), otherwise a seeded random sample.
    """
    n_hold = min(int(max_rows), int(round(share * n_rows)))
    if n_hold < MIN_HOLDOUT or n_hold >= n_rows:
        return np.empty(0, dtype=int)
    if times is None:
        rng = np.random.default_rng(random_state)
        return np.sort(rng.choice(n_rows, size=n_hold, replace=False))
    key = _time_key(times)
    order = np.argsort(key, kind="stable")
    return np.sort(order[-n_hold:])


def _time_key(times: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        key = pd.to_numeric(times, errors="coerce").to_numpy(dtype=float)
    else:
        stamps = pd.to_datetime(times, errors="coerce", utc=True, format="mixed")
        key = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    return np.where(np.isnan(key), -np.inf, key)


@dataclass(frozen=True)
class Comparison:
    """Both scores on the held-out rows and the bootstrap interval of their difference."""

    challenger: float
    champion: float
    low: float
    high: float
    agreement: float
    rows: int
    resamples: int
    draws: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.empty(0))
    """The bootstrap draws of (challenger - champion)."""

    @property
    def difference(self) -> float:
        """Challenger minus champion on all held-out rows."""
        return self.challenger - self.champion


@dataclass(frozen=True)
class Fitted:
    """Training rows as both models label them: what the held-out rows are judged against.

    With it, the evidence of a labeling is out of sample: each cluster's Gaussian is fitted on
    these rows and the held-out rows are scored under it (see
    :func:`clusterflow.cluster.evidence.heldout_loglik`).
    """

    X: np.ndarray
    challenger: np.ndarray
    champion: np.ndarray
    penalised: bool = False
    """Also subtract the BIC penalty per row at the size of these rows (what the sweep pays)."""


def compare(
    X: np.ndarray,
    challenger_labels: np.ndarray,
    champion_labels: np.ndarray,
    *,
    resamples: int,
    random_state: int,
    score: ScoreFn | None = None,
    fitted: Fitted | None = None,
) -> Comparison:
    """Score two assignments of the same rows in ``X`` and bootstrap their difference.

    Each resample draws the rows with replacement and scores both assignments on the same draw
    (a paired bootstrap), so what the two share cancels out of the difference. With ``fitted``
    (training rows labeled by both models) the selection evidence is computed out of sample.
    """
    score = score or labeling_score
    challenger_labels = np.asarray(challenger_labels, dtype=int)
    champion_labels = np.asarray(champion_labels, dtype=int)
    n = len(X)
    if score is _selection_evidence:
        on_challenger, on_champion = _evidence_on_sample(
            X, (challenger_labels, champion_labels), fitted, random_state
        )
    elif score is provisional_labeling_score:
        # The same numbers as calling the score on each resample, from one distance matrix
        # (a resample is a vector of row multiplicities): ~100x faster.
        distances = pairwise_distances(X).astype(np.float32)
        on_challenger, on_champion = (
            partial(_weighted_silhouette, distances, labels)
            for labels in (challenger_labels, champion_labels)
        )
    else:
        on_challenger, on_champion = (
            partial(_score_repeated, score, X, labels, random_state)
            for labels in (challenger_labels, champion_labels)
        )

    rng = np.random.default_rng(random_state)
    diffs = np.empty(resamples)
    for b in range(resamples):
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n)
        diffs[b] = on_challenger(weights) - on_champion(weights)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    ones = np.ones(n, dtype=int)
    return Comparison(
        challenger=on_challenger(ones),
        champion=on_champion(ones),
        low=float(low),
        high=float(high),
        agreement=float(adjusted_rand_score(champion_labels, challenger_labels)),
        rows=n,
        resamples=resamples,
        draws=diffs,
    )


OnSample = Callable[[np.ndarray], float]
"""A labeling's score on a resample given as row multiplicities (ones: the held-out rows)."""


def _score_repeated(
    score: ScoreFn, X: np.ndarray, labels: np.ndarray, random_state: int, weights: np.ndarray
) -> float:
    pick = np.repeat(np.arange(len(X)), weights)
    return float(score(X[pick], labels[pick], random_state=random_state))


def _evidence_on_sample(
    X: np.ndarray,
    labelings: tuple[np.ndarray, np.ndarray],
    fitted: Fitted | None,
    random_state: int,
) -> tuple[OnSample, OnSample]:
    """Return the selection evidence of each labeling on a resample of the held-out rows.

    In the likelihood regime each held-out row's log-likelihood under its cluster's Gaussian is
    computed once and a resample re-weights those terms (exact at weights of one). With
    ``fitted`` the Gaussians are fitted on the training rows and nothing is penalised (out of
    sample, see :func:`clusterflow.cluster.evidence.heldout_loglik`); without, they are fitted on
    the held-out rows themselves with the BIC penalty of :func:`labeling_score`, which on a few
    dozen rows weighs so much that it prefers coarse labelings. Refitting the Gaussians on every
    resample instead would score duplicated rows of tiny clusters as near-certain. In the
    silhouette regime (text) the resample is the weighted silhouette of the held-out rows, also
    exact.
    """
    from clusterflow.cluster.evidence import (
        MIN_EXPLAINED,
        Reducer,
        heldout_loglik,
        labeling_loglik,
        n_parameters,
    )

    n = len(X)
    X = np.asarray(X, dtype=np.float64)
    basis = X if fitted is None else np.asarray(fitted.X, dtype=np.float64)
    reducer = Reducer(basis, random_state=random_state)
    if reducer.explained >= MIN_EXPLAINED:
        Z = reducer.transform(X)
        terms = []
        if fitted is not None:
            Z_fit = reducer.transform(basis)
            m = len(Z_fit)
            for labels, fit_labels in zip(
                labelings, (fitted.challenger, fitted.champion), strict=True
            ):
                params = n_parameters(Z.shape[1], len(np.unique(fit_labels)))
                penalty = params * np.log(m) / (2 * m) if fitted.penalised else 0.0
                terms.append((heldout_loglik(Z_fit, fit_labels, Z, labels), penalty))
        else:
            for labels in labelings:
                loglik, params = labeling_loglik(Z, labels)
                terms.append((loglik, params * np.log(n) / (2 * n)))
        return tuple(  # type: ignore[return-value]
            partial(_reweighted, loglik, penalty) for loglik, penalty in terms
        )
    norms = np.linalg.norm(X, axis=1)
    metric = "cosine" if norms.std() <= 0.05 * norms.mean() else "euclidean"
    distances = pairwise_distances(X, metric=metric).astype(np.float32)
    return tuple(  # type: ignore[return-value]
        partial(_weighted_silhouette, distances, labels) for labels in labelings
    )


def _reweighted(loglik: np.ndarray, penalty: float, weights: np.ndarray) -> float:
    return float(weights @ loglik / len(loglik) - penalty)


def _weighted_silhouette(distances: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Silhouette of the sample holding row ``i`` ``weights[i]`` times (noise left out).

    Equal to :func:`sklearn.metrics.silhouette_score` on the rows repeated by ``weights``: a
    copy's own-cluster mean counts the other copies (at distance 0) and excludes itself.
    """
    weights = np.where(labels >= 0, weights, 0).astype(float)
    ids, codes = np.unique(np.where(labels >= 0, labels, -1), return_inverse=True)
    real = ids >= 0
    onehot = np.zeros((len(labels), len(ids)))
    onehot[np.arange(len(labels)), codes] = 1.0
    onehot = onehot[:, real]
    codes = codes - (~real).sum()
    counts = weights @ onehot
    present = counts > 0
    if present.sum() < 2 or weights.sum() <= present.sum():
        return -1.0
    totals = distances @ (onehot * weights[:, None])
    rows = np.flatnonzero(weights > 0)
    own = codes[rows]
    own_count = counts[own]
    a = np.where(own_count > 1, totals[rows, own] / np.maximum(own_count - 1, 1), 0.0)
    means = np.where(present, totals[rows] / np.where(present, counts, 1), np.inf)
    means[np.arange(len(rows)), own] = np.inf
    b = means.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(own_count > 1, (b - a) / np.maximum(a, b), 0.0)
    s = np.nan_to_num(s)
    return float(np.sum(s * weights[rows]) / weights[rows].sum())


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger replaces the champion, and the evidence (logged as ``gate.json``)."""

    promote: bool
    outcome: Outcome
    reason: str
    challenger_score: float | None
    champion_score: float | None
    interval: tuple[float, float] | None = None
    agreement: float | None = None
    rows: int = 0
    resamples: int = 0
    champion_version: str | None = None
    cluster_map: dict[int, int] = field(default_factory=dict)
    matched_share: float | None = None
    metric: str = ""

    def to_dict(self) -> dict:
        """JSON-safe view (cluster map keys as strings)."""
        return {
            "promote": self.promote,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "metric": self.metric,
            "challenger_score": self.challenger_score,
            "champion_score": self.champion_score,
            "difference": None
            if self.challenger_score is None or self.champion_score is None
            else self.challenger_score - self.champion_score,
            "interval": None if self.interval is None else list(self.interval),
            "confidence": CONFIDENCE,
            "agreement_ari": self.agreement,
            "rows": self.rows,
            "resamples": self.resamples,
            "champion_version": self.champion_version,
            "cluster_map": {str(k): int(v) for k, v in self.cluster_map.items()},
            "matched_share": self.matched_share,
        }

    def again(self, other: GateDecision, note: str) -> GateDecision:
        """Return ``other`` (a later decision) with this one's cluster map and a noted reason."""
        from dataclasses import replace

        return replace(
            other,
            reason=f"{other.reason} ({note})",
            cluster_map=self.cluster_map,
            matched_share=self.matched_share,
        )


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


def _label_reference(
    challenger: ClusterModel,
    champion: ClusterModel,
    reference: pd.DataFrame,
    embeddings: np.ndarray | None,
) -> Fitted:
    """Both models' clusters for the training rows, in the challenger's feature space."""
    _, _, X = challenger.feature_matrix(reference, embeddings=embeddings)
    mine = np.asarray(challenger.clusterer.predict(X), dtype=int)
    same_text = champion.embedder is not None and champion.embedder == challenger.embedder
    theirs = champion.predict(reference, embeddings=embeddings if same_text else None)["cluster"]
    return Fitted(X=X, challenger=mine, champion=theirs.to_numpy(dtype=int))


def decide(
    challenger: ClusterModel,
    champion: ClusterModel | None,
    holdout: pd.DataFrame,
    *,
    resamples: int,
    random_state: int,
    replace_incompatible: bool = False,
    challenger_embeddings: np.ndarray | None = None,
    champion_version: str | None = None,
    score: ScoreFn | None = None,
    reference: pd.DataFrame | None = None,
    reference_embeddings: np.ndarray | None = None,
) -> GateDecision:
    """Compare challenger and champion on the held-out rows and align the challenger's ids.

    Parameters
    ----------
    challenger, champion : ClusterModel
        The new model and the current champion (None when there is none, or when the version
        ``champion_version`` cannot be loaded).
    holdout : DataFrame
        The held-out raw rows (the challenger never saw them).
    resamples : int
        Bootstrap resamples of the held-out rows.
    random_state : int
        Seed of the bootstrap (and of the score).
    replace_incompatible : bool
        Promote over a champion that cannot score these rows (other columns).
    challenger_embeddings : ndarray, optional
        Precomputed text vectors of ``holdout`` (reused for the champion when it embeds the
        same way).
    champion_version : str, optional
        Recorded in the decision.
    score : callable, optional
        ``score(X, labels, *, random_state) -> float``; default :data:`labeling_score`.
    reference : DataFrame, optional
        A sample of the raw training rows. With it (and the default score) both labelings are
        judged out of sample: each cluster's Gaussian is fitted on these rows as that model
        labels them, and the held-out rows are scored under it, unpenalised.
    reference_embeddings : ndarray, optional
        Precomputed text vectors of ``reference``.

    Returns
    -------
    GateDecision
        With ``cluster_map``: the challenger's raw ids -> ids aligned to the champion's (identity
        when there is no comparable champion).
    """
    score = score or labeling_score
    metric = score_name(score)
    rows = len(holdout)
    raw = np.empty(0, dtype=int)
    X = np.empty((0, 0))
    if rows:
        challenger.check_columns(holdout)
        _, _, X = challenger.feature_matrix(holdout, embeddings=challenger_embeddings)
        raw = np.asarray(challenger.clusterer.predict(X), dtype=int)
    identity = {int(c): int(c) for c in np.unique(raw[raw >= 0])}
    own = float(score(X, raw, random_state=random_state)) if rows else None
    common: dict[str, Any] = {"rows": rows, "champion_version": champion_version, "metric": metric}

    if champion is None:
        if champion_version is None:
            return GateDecision(
                True, Outcome.FIRST, "no champion yet", own, None, cluster_map=identity, **common
            )
        return GateDecision(
            True,
            Outcome.UNLOADABLE,
            f"the champion (version {champion_version}) cannot be loaded; replaced",
            own,
            None,
            cluster_map=identity,
            **common,
        )
    try:
        same_text = champion.embedder is not None and champion.embedder == challenger.embedder
        old = champion.predict(holdout, embeddings=challenger_embeddings if same_text else None)[
            "cluster"
        ].to_numpy(dtype=int)
    except (ClusterflowError, KeyError, ValueError, TypeError) as err:
        why = err.message if isinstance(err, ClusterflowError) else f"{type(err).__name__}: {err}"
        if replace_incompatible:
            verdict = "replaced (replace_incompatible was asked)"
        else:
            verdict = (
                "kept; the new version is 'challenger' (replace it with --replace-incompatible)"
            )
        return GateDecision(
            replace_incompatible,
            Outcome.INCOMPATIBLE,
            f"the champion (version {champion_version}) cannot score this data ({why}): {verdict}",
            own,
            None,
            cluster_map=identity,
            **common,
        )
    if rows < MIN_HOLDOUT:
        return GateDecision(
            False,
            Outcome.NO_EVIDENCE,
            f"only {rows} held-out rows (fewer than {MIN_HOLDOUT}): no evidence against champion "
            f"version {champion_version}, which stays",
            own,
            None,
            cluster_map=identity,
            **common,
        )
    mapping, share = match_clusters(raw, old, reserved=champion.published_ids())
    fitted = None
    if reference is not None and len(reference) >= MIN_HOLDOUT and score is labeling_score:
        fitted = _label_reference(challenger, champion, reference, reference_embeddings)
        common["metric"] = f"{metric} (out of sample: fitted on {len(reference)} training rows)"
    found = compare(
        X, raw, old, resamples=resamples, random_state=random_state, score=score, fitted=fitted
    )
    interval = f"95% interval of the difference [{found.low:+.4f}, {found.high:+.4f}]"
    scores = (
        f"challenger {found.challenger:.4f} vs champion version {champion_version} "
        f"{found.champion:.4f} on {rows} held-out rows"
    )
    if found.low > 0:
        outcome, reason = Outcome.BETTER, f"{scores}: challenger better, {interval} above zero"
    elif found.high < 0:
        outcome, reason = (
            Outcome.WORSE,
            f"challenger {found.challenger:.4f} loses to champion version {champion_version} "
            f"{found.champion:.4f} on {rows} held-out rows: {interval} below zero",
        )
    else:
        outcome, reason = (
            Outcome.TIE,
            f"{scores}: a tie, {interval} contains zero; the champion stays",
        )
    return GateDecision(
        outcome == Outcome.BETTER,
        outcome,
        reason,
        found.challenger,
        found.champion,
        interval=(found.low, found.high),
        agreement=found.agreement,
        resamples=found.resamples,
        cluster_map=mapping,
        matched_share=share,
        **common,
    )
