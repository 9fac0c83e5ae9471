"""What a drift comparison found: :class:`DriftResult`, its verdict, reason sentences and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterflow.drift._evidence import (
    ClusterMixDrift,
    ColumnDrift,
    EmbeddingDrift,
    NoveltyDrift,
    NumericColumnDrift,
)
from clusterflow.drift._thresholds import DriftThresholds

__all__ = ["DriftResult", "column_effect", "format_number", "format_p_value", "p_equals"]


@dataclass
class DriftResult:
    """What :func:`compare` found.

    Attributes
    ----------
    drift_detected : bool
        The overall verdict (see :func:`compare` for the rule).
    columns : dict of str to ColumnDrift
        Per column (:class:`NumericColumnDrift` or :class:`CategoricalColumnDrift`): ``kind``,
        ``test``, ``statistic``, ``p_value`` (raw), ``p_value_adjusted`` (Holm), ``effect``,
        ``effect_name``, ``drifted`` and summary statistics of both sides.
    embedding : EmbeddingDrift
        ``method``, ``auc``, ``p_value``, ``threshold``, ``drifted`` (``method`` is ``"none"``
        when either side has no embeddings).
    clusters : ClusterMixDrift
        Reference and batch proportions per cluster id, ``psi``, ``js``, ``p_value``,
        ``drifted``.
    novelty : NoveltyDrift
        Novel share and noise share of both sides, mean distance to the nearest centre of both
        sides, ``p_value``, ``drifted``.
    reasons : list of str
        One human sentence per drifted view.
    thresholds : dict
        The thresholds used.
    """

    drift_detected: bool
    columns: dict[str, ColumnDrift]
    embedding: EmbeddingDrift
    clusters: ClusterMixDrift
    novelty: NoveltyDrift
    reasons: list[str]
    thresholds: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_views(
        cls,
        columns: dict[str, ColumnDrift],
        embedding: EmbeddingDrift,
        clusters: ClusterMixDrift,
        novelty: NoveltyDrift,
        thresholds: DriftThresholds,
    ) -> DriftResult:
        """Return the verdict on the views, with one sentence per drifted view.

        The batch drifted when at least ``thresholds.min_columns`` columns drifted, or the text
        embeddings, the cluster mix or the novel share drifted.
        """
        n_drifted = sum(view.drifted for view in columns.values())
        return cls(
            drift_detected=bool(
                n_drifted >= thresholds.min_columns
                or embedding.drifted
                or clusters.drifted
                or novelty.drifted
            ),
            columns=columns,
            embedding=embedding,
            clusters=clusters,
            novelty=novelty,
            reasons=_reasons(columns, embedding, clusters, novelty, thresholds),
            thresholds=thresholds.model_dump(),
        )

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, largest effect first."""
        return _drifted_sorted(self.columns)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-safe Python (NaN and infinities become None).

        This is drift.json's content (before ``rows``): the one place the typed views become
        dicts.
        """
        return _json_safe(
            {
                "drift_detected": self.drift_detected,
                "drifted_columns": self.drifted_columns,
                "reasons": self.reasons,
                "columns": {name: view.to_dict() for name, view in self.columns.items()},
                "embedding": self.embedding.to_dict(),
                "clusters": self.clusters.to_dict(),
                "novelty": self.novelty.to_dict(),
                "thresholds": self.thresholds,
            }
        )


# --- sentences and JSON ---------------------------------------------------------------------


def _reasons(
    columns: dict[str, ColumnDrift],
    embedding: EmbeddingDrift,
    clusters: ClusterMixDrift,
    novelty: NoveltyDrift,
    thresholds: DriftThresholds,
) -> list[str]:
    """One sentence per drifted view: columns (largest effect first), text, cluster mix, novelty."""
    reasons = [_column_reason(col, columns[col], thresholds) for col in _drifted_sorted(columns)]
    if embedding.drifted:
        reasons.append(
            f"text embeddings: a classifier tells batch from reference with ROC AUC "
            f"{embedding.auc:.3f} (threshold {embedding.threshold:.2f}, "
            f"{p_equals(embedding.p_value)})"
        )
    if clusters.drifted:
        reasons.append(_cluster_reason(clusters))
    if novelty.drifted:
        reasons.append(
            f"novelty: {novelty.batch_novel_share:.1%} of batch rows are far from every "
            f"cluster, against {novelty.reference_novel_share:.1%} of reference rows "
            f"(binomial {p_equals(novelty.p_value)})"
        )
    return reasons


def _drifted_sorted(columns: dict[str, ColumnDrift]) -> list[str]:
    drifted = [(c, column_effect(info)) for c, info in columns.items() if info.drifted]
    return [c for c, _ in sorted(drifted, key=lambda item: -item[1])]


def column_effect(info: ColumnDrift) -> float:
    """Return the larger of a column's effect and its blank share's rise (0 for neither)."""
    rise = info.missing.rise if info.missing is not None else None
    return max(info.effect or 0.0, rise or 0.0)


def format_p_value(p: float | None) -> str:
    """Return a p-value as the drift views print it (``n/a``; an underflow as ``<1e-300``)."""
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-300 else "<1e-300"


def p_equals(p: float | None) -> str:
    """Return ``p=0.0054``, or ``p<1e-300`` for an underflow (not ``p=<1e-300``)."""
    text = format_p_value(p)
    return f"p{text}" if text.startswith("<") else f"p={text}"


def format_number(x: float, digits: int = 3) -> str:
    """Return ``x`` with ``digits`` significant digits, never in scientific notation above 1.

    Grams and counts read as ``4,157`` rather than ``4.16e+03``; small values keep ``g``'s form.
    """
    text = f"{x:.{digits}g}"
    return f"{x:,.0f}" if "e+" in text else text


def _fmt_num(x: float) -> str:
    return format_number(x)


def _column_reason(col: str, info: ColumnDrift, thresholds: DriftThresholds) -> str:
    """Why a column drifted: its blank share rose, its values moved, or both."""
    parts = []
    missing = info.missing
    if missing is not None and missing.drifted and missing.reference_share is not None:
        parts.append(
            f"{missing.batch_share:.1%} of the batch's values are blank against "
            f"{missing.reference_share:.1%} of the training rows' (binomial Holm "
            f"{p_equals(missing.p_value_adjusted)})"
        )
    p_adj = info.p_value_adjusted
    if (
        p_adj is not None
        and p_adj < thresholds.column_p_value
        and (info.effect or 0.0) > thresholds.column_effect
    ):
        moved = _distribution_reason(info)
        parts.append(f"values: {moved}" if parts else moved)
    return f"column {col}: " + "; ".join(parts)


def _distribution_reason(info: ColumnDrift) -> str:
    if isinstance(info, NumericColumnDrift):
        r, b = info.reference, info.batch
        return (
            f"mean {_fmt_num(r.mean)} -> {_fmt_num(b.mean)}, median "
            f"{_fmt_num(r.median)} -> {_fmt_num(b.median)} (KS D={info.effect:.3f}, "
            f"Holm {p_equals(info.p_value_adjusted)})"
        )
    moves = ", ".join(
        f"{m.category!r} {m.reference:.1%} -> {m.batch:.1%}" for m in info.top_moves[:2]
    )
    new = f"; new categories: {info.new_categories[:3]}" if info.new_categories else ""
    test = "Monte Carlo" if info.test == "monte_carlo_multinomial" else "chi-square"
    return (
        f"{moves}{new} (total variation {info.effect:.3f}, {test} Holm "
        f"{p_equals(info.p_value_adjusted)})"
    )


def _cluster_reason(view: ClusterMixDrift) -> str:
    ref, new = view.reference, view.batch
    biggest = max(ref, key=lambda k: abs(new[k] - ref[k]))
    return (
        f"cluster mix: cluster {biggest} {ref[biggest]:.1%} -> {new[biggest]:.1%} of rows "
        f"(PSI {view.psi:.3f} > {view.threshold:.2f}, JS {view.js:.3f})"
    )


def _json_safe(obj: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_json_safe(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj
