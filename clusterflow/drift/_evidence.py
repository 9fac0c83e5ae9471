"""What each view of a drift comparison found: frozen records with named, typed fields.

:func:`~clusterflow.drift.compare` builds one record per view (a column, the text embeddings, the
cluster mix, the novelty); the reason sentences and the reports read their fields by name. They
become plain dicts only at the edge, through :meth:`DriftView.to_dict`, in the order of their
fields: that order *is* drift.json's key order, so a new field goes where its key should stand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = [  # in reading order
    "DriftView",
    "NumericSummary",
    "CategoryCounts",
    "CategoryMove",
    "MissingShare",
    "NumericColumnDrift",
    "CategoricalColumnDrift",
    "ColumnDrift",
    "EmbeddingDrift",
    "ClusterMixDrift",
    "NoveltyDrift",
]

_OMIT_IF_NONE = "omit_if_none"
"""Field metadata: leave the key out of :meth:`DriftView.to_dict` while the value is None."""


@dataclass(frozen=True)
class DriftView:
    """Base of the records below: their JSON form."""

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain Python, keys in field order (nested records as dicts).

        A field marked ``omit_if_none`` is left out while it holds None (the text view's
        classifier details when it was not run, its note when it was).
        """
        plain = asdict(self)
        for item in fields(self):
            if item.metadata.get(_OMIT_IF_NONE) and plain[item.name] is None:
                del plain[item.name]
        return plain

    def __getitem__(self, key: str) -> Any:
        """Read a field as the dicts these records replaced were read (``view["auc"]``)."""
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field like ``dict.get``: ``default`` when the JSON form has no such key."""
        return self.to_dict().get(key, default)


# --- columns --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NumericSummary(DriftView):
    """Summary statistics of one side of a numeric column."""

    n: int
    mean: float
    std: float
    p05: float
    median: float
    p95: float


@dataclass(frozen=True, kw_only=True)
class CategoryCounts(DriftView):
    """Rows and distinct categories of one side of a categorical column."""

    n: int
    categories: int


@dataclass(frozen=True, kw_only=True)
class CategoryMove(DriftView):
    """One category's share of rows on both sides."""

    category: str
    reference: float
    batch: float


@dataclass(frozen=True, kw_only=True)
class MissingShare(DriftView):
    """A column's share of blank cells in the batch against the training file's.

    The rise (batch minus training share) is the total variation distance of the "blank"
    indicator, so it is held to ``column_effect`` like the other column effects; its one-sided
    binomial p-value joins the columns' Holm family. ``reference_share`` is None, and nothing is
    tested, for a model saved before the training share was recorded (``note`` says so).
    """

    reference_share: float | None
    batch_share: float
    batch_missing: int
    rise: float | None
    p_value: float | None
    p_value_adjusted: float | None = None
    drifted: bool = False
    note: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})


@dataclass(frozen=True, kw_only=True)
class ColumnTest(DriftView):
    """What the test of any column reports; the two kinds below add their own evidence.

    ``kind``, ``test`` and ``effect_name`` are fixed by the kind of column. ``p_value_adjusted``
    (Holm, over all compared columns) and ``drifted``, the last two keys of every column in
    drift.json, are set by :func:`~clusterflow.drift.compare` once every column has been tested.

    The distribution is tested with the batch's gaps filled by the model's imputer, as the
    reference's are. With too few values to test (none at all, or too few rows for any outcome
    to reach ``column_p_value``),
    ``statistic`` and ``p_value`` are None and ``note`` says why. ``missing`` tests the share of
    blank cells against the training file's (left out when that share is not known).
    """

    kind: str = field(init=False)
    test: str = field(init=False)
    statistic: float | None
    p_value: float | None
    effect: float | None
    effect_name: str = field(init=False)


@dataclass(frozen=True, kw_only=True)
class NumericColumnDrift(ColumnTest):
    """A numeric column compared with the two-sample Kolmogorov-Smirnov test (effect: KS D)."""

    kind: Literal["numeric"] = field(default="numeric", init=False)
    test: str = field(default="ks_2samp", init=False)
    effect_name: str = field(default="KS D", init=False)
    wasserstein: float
    wasserstein_scaled: float | None
    """The Wasserstein distance over the reference's standard deviation (None when it is 0)."""
    reference: NumericSummary
    batch: NumericSummary
    """Of the batch's values, gaps filled (their share is in ``missing``)."""
    missing: MissingShare | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    note: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    p_value_adjusted: float | None = None
    drifted: bool = False


@dataclass(frozen=True, kw_only=True)
class CategoricalColumnDrift(ColumnTest):
    """A categorical column compared with chi-square on the pooled 2 x k table.

    The effect is the total variation distance on the pooled table.
    """

    kind: Literal["categorical"] = field(default="categorical", init=False)
    test: str = "chi2_contingency"
    """``"monte_carlo_multinomial"`` when the batch is too small for chi-square."""
    effect_name: str = field(default="total variation", init=False)
    categories_tested: int
    """Rows of the pooled table (rare categories count as one, ``(other)``)."""
    pooled_categories: int
    new_categories: list[str]
    """Categories of the batch the reference never had, sorted."""
    top_moves: list[CategoryMove]
    """The five categories whose share moved most, largest move first."""
    reference: CategoryCounts
    batch: CategoryCounts
    """Of the batch's values, gaps filled (their share is in ``missing``)."""
    missing: MissingShare | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    note: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    p_value_adjusted: float | None = None
    drifted: bool = False


ColumnDrift = NumericColumnDrift | CategoricalColumnDrift
"""What the comparison of one feature column found."""


# --- the whole-sample views -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EmbeddingDrift(DriftView):
    """The text view: how well a classifier tells batch vectors from reference vectors.

    ``method`` is ``"none"`` and ``note`` says why when the classifier was not run (no vectors on
    a side, too few rows); otherwise ``auc_std``, ``rows_per_side`` and ``cv_folds`` describe it.
    """

    method: str
    auc: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    auc_std: float | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    rows_per_side: int | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    cv_folds: int | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    note: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})


@dataclass(frozen=True, kw_only=True)
class ClusterMixDrift(DriftView):
    """The cluster-mix view: the share of rows per cluster id on both sides."""

    ids: list[int]
    reference: dict[str, float]
    """Share of reference rows per cluster id (as text, ``"-1"`` for noise), in id order."""
    batch: dict[str, float]
    psi: float
    js: float
    """Jensen-Shannon distance (base 2) of the two mixes."""
    p_value: float | None
    """Chi-square, or Monte Carlo on a small batch; None when too few rows to test."""
    threshold: float
    drifted: bool
    test: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})
    """``"monte_carlo_multinomial"`` when the batch was too small for chi-square."""
    note: str | None = field(default=None, metadata={_OMIT_IF_NONE: True})


@dataclass(frozen=True, kw_only=True)
class NoveltyDrift(DriftView):
    """The novelty view: rows far from every cluster, noise rows and distances on both sides."""

    reference_novel_share: float
    batch_novel_share: float
    reference_noise_share: float
    batch_noise_share: float
    reference_mean_distance: float | None
    """Mean over the rows with a finite distance (None when no row has one)."""
    batch_mean_distance: float | None
    distance_ratio: float | None
    p_value: float
    threshold: float
    drifted: bool
