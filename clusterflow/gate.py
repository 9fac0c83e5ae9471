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
held-out rows' euclidean silhouette is compared (euclidean on the sphere too, see
:func:`clusterflow.cluster.comparison._evidence_on_sample`).

Alignment
---------
When a model follows a champion, its clusters are matched to the champion's on the held-out rows
and the sample of training rows both models labelled (a small cluster may have no held-out row;
matched on held-out rows alone it got a new id even when the retrain found the same groups), and
renumbered (:func:`clusterflow.cluster.alignment.match_clusters`), so cluster 3 still means
the same group after a retrain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.cluster.alignment import match_clusters
from clusterflow.cluster.comparison import (
    CONFIDENCE,
    Comparison,
    Fitted,
    ScoreFn,
    compare,
    labeling_score,
    provisional_labeling_score,
    score_name,
)
from clusterflow.errors import ClusterflowError
from clusterflow.model import ClusterModel

__all__ = [
    "CONFIDENCE",
    "MIN_HOLDOUT",
    "REFERENCE_ROWS",
    "Comparison",
    "Fitted",
    "GateDecision",
    "Outcome",
    "compare",
    "decide",
    "holdout_positions",
    "labeling_score",
    "match_clusters",
    "provisional_labeling_score",
    "reference_positions",
]

MIN_HOLDOUT = 30
"""Fewer held-out rows than this give no gate evidence: a 95% bootstrap interval of a score over
fewer rows is too wide to decide anything, so nothing is held out and a champion stays."""

REFERENCE_ROWS = 5000
"""Most training rows the held-out rows' Gaussians are fitted on (a seeded sample)."""


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


def _label_reference(
    challenger: ClusterModel,
    champion: ClusterModel,
    reference: pd.DataFrame,
    embeddings: np.ndarray | None,
) -> Fitted:
    """Both models' clusters for the training rows, in the challenger's feature space."""
    _, _, X = challenger.feature_matrix(reference, embeddings=embeddings)
    mine = np.asarray(challenger.clusterer.predict(X), dtype=int)
    theirs = _champion_labels(challenger, champion, reference, embeddings)
    return Fitted(X=X, challenger=mine, champion=theirs)


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
    resamples, random_state : int
        Bootstrap resamples of the held-out rows, and the seed of the bootstrap and the score.
    replace_incompatible : bool
        Promote over a champion that cannot score these rows (other columns).
    challenger_embeddings, reference_embeddings : ndarray, optional
        Precomputed text vectors of ``holdout`` and ``reference`` (reused for the champion when
        it embeds the same way).
    champion_version : str, optional
        Recorded in the decision.
    score : callable, optional
        ``score(X, labels, *, random_state) -> float``; default :data:`labeling_score`.
    reference : DataFrame, optional
        A sample of the raw training rows. With it (and the default score) both labelings are
        judged out of sample (see the module docstring), unpenalised.

    Returns
    -------
    GateDecision
        With ``cluster_map``: the challenger's raw ids -> ids aligned to the champion's (identity
        when there is no comparable champion).
    """
    score = score or labeling_score
    X, raw = _assign_holdout(challenger, holdout, challenger_embeddings)
    common = _evidence_so_far(challenger, X, raw, score, random_state, champion_version)
    if champion is None:
        return _without_champion(champion_version, common)
    try:
        if len(holdout):
            old = _champion_labels(challenger, champion, holdout, challenger_embeddings)
        else:  # a table too small to hold rows out: only the columns can be checked
            champion.check_columns(holdout)
    except (ClusterflowError, KeyError, ValueError, TypeError) as err:
        return _incompatible(err, champion_version, replace_incompatible, common)
    if len(holdout) < MIN_HOLDOUT:
        return _without_evidence(champion_version, common)
    fitted, note = _out_of_sample(challenger, champion, reference, reference_embeddings, score)
    found = compare(
        X, raw, old, resamples=resamples, random_state=random_state, score=score, fitted=fitted
    )
    common |= {"metric": common["metric"] + note}
    if fitted is None and reference is not None and len(reference):
        fitted = _label_reference(challenger, champion, reference, reference_embeddings)
    if fitted is not None:  # the training sample too: every cluster has rows there
        raw, old = np.concatenate([raw, fitted.challenger]), np.concatenate([old, fitted.champion])
    return _compared(found, raw, challenger.raw_ids(), old, champion, common)


def _assign_holdout(
    challenger: ClusterModel, holdout: pd.DataFrame, embeddings: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the challenger's feature matrix of the held-out rows and its raw clusters."""
    raw, X = np.empty(0, dtype=int), np.empty((0, 0))
    if len(holdout):
        challenger.check_columns(holdout)
        _, _, X = challenger.feature_matrix(holdout, embeddings=embeddings)
        raw = np.asarray(challenger.clusterer.predict(X), dtype=int)
    return X, raw


def _evidence_so_far(
    challenger: ClusterModel,
    X: np.ndarray,
    raw: np.ndarray,
    score: ScoreFn,
    random_state: int,
    champion_version: str | None,
) -> dict[str, Any]:
    """Return the decision's fields known before the champion is consulted (identity id map)."""
    rows = len(raw)
    own = float(score(X, raw, random_state=random_state)) if rows else None
    return {
        "rows": rows,
        "champion_version": champion_version,
        "metric": score_name(score),
        "challenger_score": own,
        "champion_score": None,
        "cluster_map": {c: c for c in challenger.raw_ids()},
    }


def _without_champion(champion_version: str | None, common: dict[str, Any]) -> GateDecision:
    """Promote the challenger when there is no champion, or it cannot be loaded."""
    if champion_version is None:
        return GateDecision(True, Outcome.FIRST, "no champion yet", **common)
    why = f"the champion (version {champion_version}) cannot be loaded; replaced"
    return GateDecision(True, Outcome.UNLOADABLE, why, **common)


def _incompatible(
    err: Exception,
    champion_version: str | None,
    replace_incompatible: bool,
    common: dict[str, Any],
) -> GateDecision:
    """Keep a champion that cannot score these rows, unless ``replace_incompatible``."""
    why = err.message if isinstance(err, ClusterflowError) else f"{type(err).__name__}: {err}"
    verdict = (
        "replaced (replace_incompatible was asked)"
        if replace_incompatible
        else "kept; the new version is 'challenger' (replace it with --replace-incompatible)"
    )
    why = f"the champion (version {champion_version}) cannot score this data ({why}): {verdict}"
    return GateDecision(replace_incompatible, Outcome.INCOMPATIBLE, why, **common)


def _without_evidence(champion_version: str | None, common: dict[str, Any]) -> GateDecision:
    """Keep the champion: too few held-out rows to compare."""
    why = (
        f"only {common['rows']} held-out rows (fewer than {MIN_HOLDOUT}): no evidence against "
        f"champion version {champion_version}, which stays"
    )
    return GateDecision(False, Outcome.NO_EVIDENCE, why, **common)


def _out_of_sample(
    challenger: ClusterModel,
    champion: ClusterModel,
    reference: pd.DataFrame | None,
    embeddings: np.ndarray | None,
    score: ScoreFn,
) -> tuple[Fitted | None, str]:
    """Return both labelings of the training sample and a note for the metric's name, or (None, "").

    Only the default score judges out of sample, and only on enough training rows.
    """
    if reference is None or len(reference) < MIN_HOLDOUT or score is not labeling_score:
        return None, ""
    fitted = _label_reference(challenger, champion, reference, embeddings)
    return fitted, f" (out of sample: fitted on {len(reference)} training rows)"


def _compared(
    found: Comparison,
    raw: np.ndarray,
    raw_ids: list[int],
    old: np.ndarray,
    champion: ClusterModel,
    common: dict[str, Any],
) -> GateDecision:
    """Decide by a comparison, with the challenger's ids matched to the champion's."""
    outcome, reason = _verdict(found, common["champion_version"])
    mapping, share = match_clusters(raw, old, reserved=champion.published_ids(), new_ids=raw_ids)
    common = common | {
        "challenger_score": found.challenger,
        "champion_score": found.champion,
        "cluster_map": mapping,
    }
    return GateDecision(
        outcome == Outcome.BETTER,
        outcome,
        reason,
        interval=(found.low, found.high),
        agreement=found.agreement,
        resamples=found.resamples,
        matched_share=share,
        **common,
    )


def _champion_labels(
    challenger: ClusterModel,
    champion: ClusterModel,
    rows: pd.DataFrame,
    embeddings: np.ndarray | None,
) -> np.ndarray:
    """Return the champion's published clusters of ``rows`` (reusing the challenger's vectors)."""
    same_text = champion.embedder is not None and champion.embedder == challenger.embedder
    found = champion.predict(rows, embeddings=embeddings if same_text else None)
    return found["cluster"].to_numpy(dtype=int)


def _verdict(found: Comparison, champion_version: str | None) -> tuple[Outcome, str]:
    """Return the outcome of a comparison and the reason in words."""
    interval = f"95% interval of the difference [{found.low:+.4f}, {found.high:+.4f}]"
    if found.high < 0:
        return Outcome.WORSE, (
            f"challenger {found.challenger:.4f} loses to champion version {champion_version} "
            f"{found.champion:.4f} on {found.rows} held-out rows: {interval} below zero"
        )
    scores = (
        f"challenger {found.challenger:.4f} vs champion version {champion_version} "
        f"{found.champion:.4f} on {found.rows} held-out rows"
    )
    if found.low > 0:
        return Outcome.BETTER, f"{scores}: challenger better, {interval} above zero"
    return Outcome.TIE, f"{scores}: a tie, {interval} contains zero; the champion stays"
