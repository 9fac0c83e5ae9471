"""The selection rule: a pure function from the sweep's candidate table to a frozen ``Selection``.

The rule (copied into the README; its constants are evaluated leave-one-dataset-out by
``benchmarks/quality/run.py``):

1. Viable candidates: at least two clusters, HDBSCAN noise at most ``max_noise``, stability
   at least ``min_stability`` (when no candidate is stable, the usable ones, said so), and a
   smallest cluster holding at least ``min_size`` of the mean cluster size, rows / k (a split
   that peels off a handful of rows is not a grouping; relative to k, so that 77 intents of
   1.3% each are not ruled out the way a fixed share of the rows would; when no candidate
   passes, the check is dropped and the rule says so). Where the evidence proposes (step 2),
   every cluster must also be reproduced: prediction strength (Tibshirani and Walther 2005:
   of each cluster's pairs of rows, the share that refits on subsamples keep together; the
   worst cluster counts) at least ``min_strength``. It guards the likelihood against splits
   that do not replicate; on topical text, where the silhouette proposes, prediction strength
   falls with k whatever the true number of topics and is not used.
2. Evidence proposes: the candidate with the highest *evidence*, the classification
   likelihood of its labeling penalised like BIC (:func:`clusterflow.cluster.evidence.
   labeling_score`), which pays for every extra cluster and for overlapping clusters. The
   likelihood is computed in a reduced space (at most 16 PCA components of the continuous
   columns); when that space holds less than ``min_explained`` of the feature variance
   (text embeddings: about a third) the likelihood speaks for too little of the data and the
   silhouette proposes instead.
   At the proposed k, the algorithm with the highest silhouette is kept (``algorithm_by``).
   Only k-means and agglomerative candidates propose by the silhouette
   (``silhouette_from="partitions"``): a mixture can win the silhouette with a broad component
   around a tight one, a split by spread rather than by place (digits: GMM k=2, ARI 0.002).
   ``min_explained`` (0.8) and this option were chosen together, leave-one-dataset-out, on the
   quality benchmark's 22 sets (its joint table).
3. Geometry guards: the proposal stands only if its silhouette reaches
   ``silhouette_ratio`` of the best silhouette among the viable candidates; otherwise the
   best-evidence candidate among those that reach it is chosen.
4. Runner-ups: the best viable candidate (same order) with a smaller k (coarser) and with a
   larger k (finer), with their evidence. A side with no viable candidate names its nearest
   miss instead, with the checks it fails (``Alternative.caveat``). A choice at an edge of the
   k range is stated.

Candidates whose k lies outside the asked range ``[k_min, k_max]`` (HDBSCAN chooses its own k)
are viable only when nothing inside the range is usable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clusterflow.cluster.evidence import MIN_EXPLAINED
from clusterflow.errors import ConfigError, NoViableClustering

__all__ = ["Alternative", "Selection", "SelectionParams", "partition_stands", "select"]


@dataclass(frozen=True)
class SelectionParams:
    """The constants of the rule (defaults chosen on the quality benchmark, see README).

    Parameters
    ----------
    max_noise : float, default=0.10
        Largest HDBSCAN noise share of a viable candidate.
    min_stability : float, default=0.5
        Smallest stability of a viable candidate (dropped when no candidate reaches it).
    min_strength : float, default=0.85
        Smallest prediction strength (worst cluster) where the evidence proposes.
    min_size : float, default=0.1
        Smallest size of the smallest cluster, relative to the mean cluster size (rows / k).
    silhouette_ratio : float, default=0.7
        The evidence's proposal stands only if its silhouette reaches this share of the best
        viable silhouette.
    min_explained : float, default=MIN_EXPLAINED
        Share of the feature variance the likelihood's reduced space must hold for the
        evidence to propose; below it the silhouette proposes.
    algorithm_by : {"silhouette", "evidence"}, default="silhouette"
        ``"silhouette"``: at the chosen k, keep the algorithm with the highest silhouette.
    silhouette_from : {"partitions", "all"}, default="partitions"
        Which candidates may propose by the silhouette.
    """

    max_noise: float = 0.10
    min_stability: float = 0.5
    min_strength: float = 0.85
    min_size: float = 0.1
    silhouette_ratio: float = 0.7
    min_explained: float = MIN_EXPLAINED
    algorithm_by: str = "silhouette"
    silhouette_from: str = "partitions"


@dataclass(frozen=True)
class Alternative:
    """One candidate with the evidence that ranked it."""

    index: int
    algorithm: str
    k: int
    evidence: float
    silhouette: float
    stability: float
    caveat: str = ""

    def describe(self) -> str:
        """One line: algorithm, k and the figures (and the checks it fails, if any)."""
        caveat = f"; {self.caveat}" if self.caveat else ""
        return (
            f"{self.algorithm} k={self.k} (evidence {self.evidence:.3f}, silhouette "
            f"{self.silhouette:.3f}, stability {self.stability:.3f}{caveat})"
        )


@dataclass(frozen=True)
class Selection:
    """What the rule chose, why, and the nearest alternatives."""

    chosen: Alternative
    coarser: Alternative | None
    finer: Alternative | None
    rule: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    at_edge: bool = False

    def runner_ups(self) -> list[dict]:
        """Return the coarser and finer alternatives as plain records (for summary.json)."""
        out = []
        for role, alt in (("coarser", self.coarser), ("finer", self.finer)):
            if alt is not None:
                out.append(
                    {
                        "role": role,
                        "algorithm": alt.algorithm,
                        "k": alt.k,
                        "evidence": round(alt.evidence, 4),
                        "silhouette": round(alt.silhouette, 4),
                        "stability": None if np.isnan(alt.stability) else round(alt.stability, 4),
                        "caveat": alt.caveat or None,
                    }
                )
        return out


def runner_up_figures(record: dict) -> str:
    """Return a runner-up record's evidence, silhouette and caveat as one clause.

    ``record`` is one of :meth:`Selection.runner_ups` (as read back from ``summary.json``, where
    a record written before the caveat existed has none); the CLI and the Prefect summary both
    print runner-ups through it.
    """
    caveat = f"; {record['caveat']}" if record.get("caveat") else ""
    return f"evidence {record['evidence']:.3f}, silhouette {record['silhouette']:.3f}{caveat}"


def _alt(results: pd.DataFrame, idx: int, caveat: str = "") -> Alternative:
    row = results.loc[idx]
    return Alternative(
        index=int(idx),
        algorithm=str(row["algorithm"]),
        k=int(row["k"]),
        evidence=float(row["evidence"]),
        silhouette=float(row["silhouette"]),
        stability=float(row["stability"]),
        caveat=caveat,
    )


def _usable(results: pd.DataFrame, params: SelectionParams) -> pd.Series:
    """Rows with two clusters or more, a silhouette, evidence and little enough noise."""
    return (
        results["silhouette"].notna()
        & results["evidence"].notna()
        & (results["noise_share"].fillna(0) <= params.max_noise)
        & (results["k"] >= 2)
    )


def _stable(results: pd.DataFrame, params: SelectionParams) -> pd.Series:
    """Rows whose stability is not under ``min_stability`` (unmeasured counts as stable)."""
    return ~(results["stability"] < params.min_stability)


def _sized(results: pd.DataFrame, params: SelectionParams) -> pd.Series:
    """Rows whose smallest cluster holds at least ``min_size`` of the mean cluster size."""
    return results["min_share"] * results["k"] >= params.min_size


def _strong(results: pd.DataFrame, params: SelectionParams) -> pd.Series:
    """Return which rows' prediction strength is not under ``min_strength`` (unmeasured: all)."""
    if "prediction_strength" not in results:
        return pd.Series(True, index=results.index)
    return ~(results["prediction_strength"] < params.min_strength)


def _in_scope(
    results: pd.DataFrame, params: SelectionParams, pinned: int | None, k_range: tuple[int, int]
) -> pd.Series:
    """Return the usable rows inside the asked range (and at the pinned k), where any are.

    Returns
    -------
    Series of bool
        The rows the rule may choose from, before the checks of step 1.

    Raises
    ------
    NoViableClustering
        If no candidate is usable.
    """
    usable = _usable(results, params)
    # HDBSCAN finds its own k: outside the range the user asked for it only stands when nothing
    # inside the range is usable (asked for k 9..10, a density split into 2 is not an answer).
    inside = usable & results["k"].between(*k_range)
    if inside.any():
        usable = inside
    if pinned is not None and (usable & (results["k"] == pinned)).any():
        usable &= results["k"] == pinned
    if not usable.any():
        raise NoViableClustering(
            f"no viable clustering among {len(results)} candidates: every candidate had fewer "
            "than two clusters or too much noise",
            hint="widen --k-min/--k-max, add features, or check that rows differ",
        )
    return usable


def _viable(
    results: pd.DataFrame, params: SelectionParams, in_scope: pd.Series, evidence: bool
) -> tuple[pd.DataFrame, list[str], dict[str, pd.Series]]:
    """Apply step 1 to the rows in scope, dropping a check that no candidate passes.

    Returns
    -------
    viable : DataFrame
        The viable candidates.
    notes : list of str
        One per check dropped.
    checks : dict of str to Series of bool
        The checks in force, by name, with the rows that pass each.
    """
    steps = [
        (
            "stability",
            _stable(results, params),
            f"no candidate reached stability {params.min_stability}",
        ),
        (
            "size",
            _sized(results, params),
            f"every candidate has a cluster under {params.min_size:.0%} of the mean cluster size",
        ),
    ]
    if evidence and "prediction_strength" in results:
        dropped = f"no candidate reached prediction strength {params.min_strength}"
        steps.insert(1, ("prediction strength", _strong(results, params), dropped))
    notes: list[str] = []
    checks: dict[str, pd.Series] = {}
    kept = in_scope
    for name, passes, dropped in steps:
        if (kept & passes).any():
            kept = kept & passes
            checks[name] = passes
        else:
            notes.append(dropped)
    return results[kept], notes, checks


def _floor(value: float, digits: int = 3) -> float:
    """Round ``value`` down, so that a figure shown under a threshold never prints as it."""
    # The epsilon keeps a decimal such as 0.84 (0.8399999... in binary) from dropping a digit.
    return float(np.floor(value * 10**digits + 1e-9) / 10**digits)


def _shortfall(check: str, row: pd.Series, params: SelectionParams) -> str:
    """Return one failed check of step 1 for one candidate, in words."""
    if check == "stability":
        return f"stability {_floor(row['stability']):.3f} under {params.min_stability}"
    if check == "prediction strength":
        strength = _floor(row["prediction_strength"])
        return f"prediction strength {strength:.3f} under {params.min_strength}"
    share = row["min_share"] * row["k"]
    if np.isnan(share):
        return "smallest cluster unmeasured"
    return (
        f"smallest cluster {_floor(share):.1%} of the mean cluster size, under "
        f"{params.min_size:.0%}"
    )


def _runner_up(
    results: pd.DataFrame,
    guarded: pd.DataFrame,
    viable: pd.DataFrame,
    candidates: pd.Series,
    *,
    score: str,
    params: SelectionParams,
    checks: dict[str, pd.Series],
) -> Alternative | None:
    """Return the best candidate on one side of the chosen k (with a caveat when not viable).

    Viable candidates that pass the silhouette guard come first, then any viable one. When no
    candidate on that side is viable (a conservative choice at k=2 leaves every finer one out
    for a check), the nearest miss is named with the checks in force that it fails, so a user
    sees the finer grouping and why it was not chosen: fewest failed checks, then (where the
    likelihood proposes) the highest prediction strength, then the rule's score.

    Parameters
    ----------
    results : DataFrame
        The whole candidate table.
    guarded, viable : DataFrame
        The viable candidates passing the silhouette guard, and all viable ones.
    candidates : Series of bool
        The rows in scope on this side of the chosen k.
    score : {"evidence", "silhouette"}
        The score that proposes.
    params : SelectionParams
        The rule's constants.
    checks : dict of str to Series of bool
        The checks of step 1 in force (:func:`_viable`).
    """
    for pool in (guarded, viable):
        inside = pool[candidates.loc[pool.index]]
        if len(inside):
            return _alt(results, _best(inside, score))
    rest = results[candidates]
    if rest.empty:
        return None
    # Every row here fails at least one check in force: those that pass them all are viable.
    failed = {i: [name for name, passes in checks.items() if not passes[i]] for i in rest.index}
    strength = rest.get("prediction_strength", pd.Series(np.nan, index=rest.index))
    ranked = rest.assign(
        _failed=[len(failed[i]) for i in rest.index],
        _strength=strength.fillna(0.0) if score == "evidence" else 0.0,
    ).sort_values(
        ["_failed", "_strength", score, "k"],
        ascending=[True, False, False, True],
        kind="mergesort",
    )
    idx = int(ranked.index[0])
    caveat = "; ".join(_shortfall(name, results.loc[idx], params) for name in failed[idx])
    return _alt(results, idx, caveat=f"not chosen: {caveat}")


PARTITIONS = ("kmeans", "agglomerative")


def partition_stands(
    results: pd.DataFrame,
    *,
    k_min: int,
    k_max: int,
    params: SelectionParams = SelectionParams(),
    pinned: int | None = None,
) -> bool:
    """Whether a k-means or agglomerative candidate passes every check of step 1 on its own.

    Step 1 drops its stability and size checks only when no candidate passes them, whatever
    its algorithm. When a partition passes all of them on its own, no check is dropped, and
    the viable partitions (so the silhouette's proposal among them) are the same whatever
    other candidates the table holds: the sweep uses this to leave the Gaussian mixtures
    unfitted where the silhouette proposes.
    """
    passes = (
        results["algorithm"].isin(PARTITIONS)
        & _usable(results, params)
        & results["k"].between(k_min, k_max)
        & _stable(results, params)
        & _sized(results, params)
    )
    if pinned is not None:
        passes &= results["k"] == pinned
    return bool(passes.any())


def _proposers(viable: pd.DataFrame, score: str, params: SelectionParams) -> pd.DataFrame:
    """Return the candidates allowed to propose.

    ``silhouette_from="partitions"`` leaves the silhouette's proposal to the algorithms that
    partition by distance: a mixture can win the silhouette with a broad component around a
    tight one, a split by spread rather than by place.
    """
    if score != "silhouette" or params.silhouette_from == "all":
        return viable
    if params.silhouette_from != "partitions":
        raise ConfigError(
            f"silhouette_from must be 'all' or 'partitions', got {params.silhouette_from!r}"
        )
    inside = viable[viable["algorithm"].isin(PARTITIONS)]
    return inside if len(inside) else viable


def _best(frame: pd.DataFrame, score: str = "evidence") -> int:
    other = "silhouette" if score == "evidence" else "evidence"
    order = frame.sort_values([score, other, "k"], ascending=[False, False, True], kind="mergesort")
    return int(order.index[0])


def _choose(
    results: pd.DataFrame,
    viable: pd.DataFrame,
    *,
    score: str,
    share: float,
    best_sil: float,
    floor: float,
    params: SelectionParams,
) -> tuple[int, str]:
    """Apply steps 2 and 3 of the rule: the proposal, its silhouette guard, the algorithm at k.

    Parameters
    ----------
    results : DataFrame
        The whole candidate table (to describe a rejected proposal).
    viable : DataFrame
        The viable candidates (step 1).
    score : {"evidence", "silhouette"}
        The score that proposes.
    share : float
        Share of the feature variance held by the likelihood's reduced space.
    best_sil : float
        The best silhouette among the viable candidates.
    floor : float
        The silhouette a choice must reach.
    params : SelectionParams
        The rule's constants.

    Returns
    -------
    tuple of (int, str)
        Index of the chosen candidate in ``results`` and why it was chosen, in words.
    """
    proposal = _best(_proposers(viable, score, params), score)
    if score == "silhouette":
        chosen = proposal
        why = (
            f"the highest silhouette (the likelihood's reduced view holds only "
            f"{share:.0%} of the variance, under {params.min_explained:.0%})"
        )
    elif viable.loc[proposal, "silhouette"] >= floor:
        chosen = proposal
        why = "the highest evidence"
    else:
        chosen = _best(viable[viable["silhouette"] >= floor])
        rejected = _alt(results, proposal)
        why = (
            f"the highest evidence among candidates whose silhouette reaches "
            f"{params.silhouette_ratio:.0%} of the best {best_sil:.3f} ({rejected.algorithm} "
            f"k={rejected.k} had more evidence but silhouette {rejected.silhouette:.3f})"
        )
    if params.algorithm_by == "silhouette" and score == "evidence":
        at_k = viable[(viable["k"] == viable.loc[chosen, "k"]) & (viable["silhouette"] >= floor)]
        chosen = _best(at_k, "silhouette")
        why += "; at that k, the algorithm with the highest silhouette"
    return chosen, why


def _edge_note(k: int, k_min: int, k_max: int) -> str:
    """Say that the chosen ``k`` lies at the top or the bottom of the swept range."""
    if k == k_max:
        return f"k={k} is the top of the range: a larger k_max may fit better"
    return f"k={k} is the bottom of the range k_min={k_min}"


def _rule_text(pick: Alternative, why: str, n_viable: int, params: SelectionParams) -> str:
    """Return the rule in words, with the chosen candidate's figures and the thresholds."""
    return (
        f"{pick.algorithm} k={pick.k} from {why} among {n_viable} viable candidates "
        f"(noise <= {params.max_noise:.0%}, stability >= {params.min_stability}, prediction "
        f"strength >= {params.min_strength}, smallest "
        f"cluster >= {params.min_size:.0%} of the mean cluster size): evidence "
        f"{pick.evidence:.3f}, "
        f"silhouette {pick.silhouette:.3f}, stability {pick.stability:.3f}"
    )


def select(
    results: pd.DataFrame,
    *,
    k_min: int,
    k_max: int,
    params: SelectionParams = SelectionParams(),
    pinned: int | None = None,
) -> Selection:
    """Choose one candidate of the sweep table by the rule of the module docstring.

    Parameters
    ----------
    results : DataFrame
        One row per candidate with at least ``algorithm``, ``k``, ``silhouette``,
        ``evidence``, ``stability``, ``noise_share`` and ``min_share``.
    k_min, k_max : int
        The k range that was swept (to flag a choice at its edge).
    params : SelectionParams
        The rule's constants.
    pinned : int, optional
        A k fixed by the user: only candidates with that k are considered (when any exist).

    Returns
    -------
    Selection
        The chosen candidate, the runner-ups, the rule in words and the caveats.

    Raises
    ------
    NoViableClustering
        If no candidate has two clusters and acceptable noise.
    """
    share = float(results["evidence_share"].iloc[0]) if "evidence_share" in results else 1.0
    score = "evidence" if share >= params.min_explained else "silhouette"
    in_scope = _in_scope(results, params, pinned, (k_min, k_max))
    viable, notes, checks = _viable(results, params, in_scope, evidence=score == "evidence")
    best_sil = float(viable["silhouette"].max())
    floor = params.silhouette_ratio * best_sil if score == "evidence" else best_sil
    chosen, why = _choose(
        results, viable, score=score, share=share, best_sil=best_sil, floor=floor, params=params
    )
    pick = _alt(results, chosen)
    # Runner-ups obey the same guard as the choice, when any candidate on that side does.
    guarded = viable[viable["silhouette"] >= min(floor, params.silhouette_ratio * best_sil)]
    coarser = _runner_up(
        results,
        guarded,
        viable,
        in_scope & (results["k"] < pick.k),
        score=score,
        params=params,
        checks=checks,
    )
    finer = _runner_up(
        results,
        guarded,
        viable,
        in_scope & (results["k"] > pick.k),
        score=score,
        params=params,
        checks=checks,
    )
    at_edge = pinned is None and k_max > k_min and pick.k in (k_min, k_max)
    if at_edge:
        notes.append(_edge_note(pick.k, k_min, k_max))
    if pinned is not None:
        why = f"k pinned to {pinned}; at that k, {why}"
    return Selection(
        chosen=pick,
        coarser=coarser,
        finer=finer,
        rule=_rule_text(pick, why, len(viable), params),
        notes=tuple(notes),
        at_edge=at_edge,
    )
