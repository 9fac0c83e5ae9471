"""Drift of a new batch against the champion's reference: pure statistics, no I/O.

:func:`compare` looks at four views of the same two samples and says, for each, whether the batch
moved far enough *and* surely enough to matter:

========================  ============================================  ===========================
view                      test (significance)                           effect size (magnitude)
========================  ============================================  ===========================
numeric column            two-sample Kolmogorov-Smirnov                 KS statistic D
categorical column        chi-square on the 2 x k contingency table,    total variation distance
                          categories with an expected count < 5 pooled  on the pooled table
                          (a batch too small for that: seeded Monte     (raw, unpooled)
                          Carlo goodness of fit to the reference)
blank cells of a column   one-sided binomial test of the batch's blank  rise of the blank share
                          share against the training rows'
text embeddings           domain classifier: logistic regression,       the cross-validated ROC AUC
                          reference vs batch, balanced subsamples,
                          stratified k-fold ROC AUC; one-sided
                          Mann-Whitney normal approximation under H0
cluster mix               chi-square on cluster counts                  PSI (and Jensen-Shannon)
novelty                   one-sided binomial test of the batch's        increase of the novel share
                          novel share against the reference's
========================  ============================================  ===========================

A view drifts only when its p-value is below ``column_p_value`` *and* its effect is above its
threshold: large batches make every trivial shift significant, small batches make noise look
large, and requiring both keeps false alarms rare in either regime. Per-column p-values are
corrected for the number of columns with Holm's step-down method (family-wise error rate),
the blank-share tests with them. Columns are compared with the batch's gaps filled, as the
reference's are; a view
with too few rows for any outcome to reach the level says "not tested" with a null p-value.

Both KS D and the total variation distance read the same way: the largest difference, between
reference and batch, in the probability of one event ("speed <= 130", "sky is Overcast").

Each view's finding is a frozen record with typed fields (``_evidence``: :class:`NumericColumnDrift`
and :class:`CategoricalColumnDrift` per column, :class:`EmbeddingDrift`, :class:`ClusterMixDrift`,
:class:`NoveltyDrift`); :meth:`DriftResult.to_dict` turns them into drift.json's dicts.

Modules: ``_thresholds`` (:class:`DriftThresholds`), ``_sample`` (:class:`DriftSample`, one side
of the comparison), ``_evidence`` (the records of what each view found), ``_statistics`` (the
tests and effect sizes: Holm, PSI, the domain classifier, chi-square on pooled tables, the
per-column tests), ``_views`` (the embedding, cluster-mix and novelty views), ``_result``
(:class:`DriftResult`: the verdict on the views, its reason sentences and JSON) and
``_compare`` (:func:`compare`, which reads top to bottom through the views).
"""

from clusterflow.drift._compare import compare
from clusterflow.drift._evidence import (
    CategoricalColumnDrift,
    CategoryCounts,
    CategoryMove,
    ClusterMixDrift,
    ColumnDrift,
    DriftView,
    EmbeddingDrift,
    MissingShare,
    NoveltyDrift,
    NumericColumnDrift,
    NumericSummary,
)
from clusterflow.drift._result import (
    DriftResult,
    column_effect,
    format_number,
    format_p_value,
    p_equals,
)
from clusterflow.drift._sample import DriftSample
from clusterflow.drift._statistics import domain_classifier_auc, holm, psi, share_rose
from clusterflow.drift._thresholds import DriftThresholds

__all__ = [
    "CategoricalColumnDrift",
    "CategoryCounts",
    "CategoryMove",
    "ClusterMixDrift",
    "ColumnDrift",
    "DriftResult",
    "format_number",
    "format_p_value",
    "p_equals",
    "DriftSample",
    "DriftThresholds",
    "DriftView",
    "EmbeddingDrift",
    "MissingShare",
    "NoveltyDrift",
    "NumericColumnDrift",
    "NumericSummary",
    "column_effect",
    "compare",
    "domain_classifier_auc",
    "holm",
    "psi",
    "share_rose",
]
