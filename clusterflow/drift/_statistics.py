"""The tests and effect sizes of drift: Holm, PSI, the domain classifier, chi-square, KS.

Pure functions of arrays and series; :mod:`clusterflow.drift._views` and
:func:`clusterflow.drift.compare` decide what counts as drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from clusterflow.drift._evidence import (
    CategoricalColumnDrift,
    CategoryCounts,
    CategoryMove,
    NumericColumnDrift,
    NumericSummary,
)
from clusterflow.errors import ValidationFailed

__all__ = [
    "MONTE_CARLO_DRAWS",
    "NO_VALUES",
    "POOLED",
    "TOO_FEW_ROWS",
    "domain_classifier_auc",
    "holm",
    "psi",
    "share_rose",
]

#: Name given to the pooled rare categories of a categorical column.
POOLED = "(other)"

#: Multinomial draws of the Monte Carlo goodness-of-fit test of a batch too small for chi-square.
MONTE_CARLO_DRAWS = 20_000

#: The note of a view whose batch is too small for any outcome to reach the test's level.
TOO_FEW_ROWS = "not tested: too few rows"

#: The note of a column with no observed (non-blank) value in the batch.
NO_VALUES = "not tested: no observed values in the batch"


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Adjust p-values for multiple tests with Holm's step-down method.

    Controls the family-wise error rate like Bonferroni but rejects at least as often.
    (scipy only ships false-discovery-rate corrections, hence this short function.)

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the input order, each in [0, 1].
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def share_rose(
    hits: int, n: int, reference_share: float, *, floor: float, min_rise: float, level: float
) -> tuple[float, bool]:
    """Test whether a share rose above its reference: one-sided binomial, and by ``min_rise``.

    ``hits`` of ``n`` batch rows are tested against ``reference_share``, floored at ``floor``
    (one row of the reference, or of the batch: a reference share of 0 would make a single hit
    "impossible"). Returns the p-value and whether the share rose by more than ``min_rise``
    with p < ``level``. The novelty view and monitoring's rows-failing-validation check use it.
    """
    null_share = min(max(reference_share, floor), 1.0)
    p_value = float(stats.binomtest(int(hits), int(n), null_share, alternative="greater").pvalue)
    return p_value, bool(hits / n - reference_share > min_rise and p_value < level)


def psi(reference: np.ndarray, batch: np.ndarray, *, epsilon: float = 1e-4) -> float:
    """Compute the population stability index between two vectors of proportions.

    ``sum((batch - reference) * ln(batch / reference))``, each proportion floored at
    ``epsilon`` (and renormalised) so that a bin empty on one side gives a large, finite index.

    Parameters
    ----------
    reference, batch : numpy.ndarray
        Counts or proportions over the same bins (normalised here).
    epsilon : float, default=1e-4
        Floor of a proportion.

    Returns
    -------
    float
        The index, >= 0; 0 for identical proportions.
    """
    p = _floored_proportions(reference, epsilon)
    q = _floored_proportions(batch, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def _floored_proportions(x: np.ndarray, epsilon: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    total = x.sum()
    if total <= 0:
        raise ValidationFailed(
            "proportions sum to zero", hint="pass counts or proportions with a positive total"
        )
    p = np.maximum(x / total, epsilon)
    return p / p.sum()


def domain_classifier_auc(
    reference: np.ndarray,
    batch: np.ndarray,
    *,
    max_rows: int = 1000,
    cv_folds: int = 5,
    random_state: int = 0,
) -> dict[str, Any]:
    """Measure how well a linear classifier tells batch vectors from reference vectors.

    Both sides are subsampled (without replacement, seeded) to the same size
    ``min(len(reference), len(batch), max_rows)``; a logistic regression is scored by
    stratified ``cv_folds``-fold cross-validated ROC AUC (mean over folds). Under "no drift"
    the out-of-fold AUC is a Mann-Whitney statistic centred on 0.5; the one-sided p-value uses
    its normal approximation with the total number of rows per side.

    Parameters
    ----------
    reference, batch : numpy.ndarray
        ``(n, dim)`` vectors of the two sides.
    max_rows : int, default=1000
        Rows sampled per side.
    cv_folds : int, default=5
        Cross-validation folds (reduced when a side is smaller).
    random_state : int, default=0
        Seed of the subsampling, the folds and the classifier.

    Returns
    -------
    dict
        ``auc``, ``auc_std`` (across folds), ``p_value``, ``rows_per_side``, ``cv_folds``.
    """
    rng = np.random.default_rng(random_state)
    n = min(len(reference), len(batch), max_rows)
    ref = reference[rng.choice(len(reference), size=n, replace=False)]
    new = batch[rng.choice(len(batch), size=n, replace=False)]
    x = np.vstack([ref, new])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    folds = max(2, min(cv_folds, n // 2))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    clf = LogisticRegression(C=1.0, max_iter=1000, random_state=random_state)
    aucs = cross_val_score(clf, x, y, cv=cv, scoring="roc_auc")
    auc = float(np.mean(aucs))
    # Mann-Whitney U under H0: AUC ~ N(0.5, (n1 + n2 + 1) / (12 n1 n2)); folds are disjoint, so
    # the mean over folds pools all n rows per side.
    sigma = math.sqrt((2 * n + 1) / (12.0 * n * n))
    p_value = float(stats.norm.sf((auc - 0.5) / sigma))
    return {
        "auc": auc,
        "auc_std": float(np.std(aucs)),
        "p_value": p_value,
        "rows_per_side": int(n),
        "cv_folds": int(folds),
    }


# --- per-column tests -----------------------------------------------------------------------


def _numeric_column(ref: pd.Series, new: pd.Series) -> NumericColumnDrift:
    """KS test of a numeric column; ``new`` holds the batch's values, gaps filled."""
    a = ref.to_numpy(dtype=float)
    b = new.to_numpy(dtype=float)
    if b.size == 0:
        return NumericColumnDrift(
            statistic=None,
            p_value=None,
            effect=None,
            wasserstein=math.nan,
            wasserstein_scaled=None,
            reference=_numeric_summary(a),
            batch=_numeric_summary(b),
            note=NO_VALUES,
        )
    ks = stats.ks_2samp(a, b)
    scale = float(np.std(a))
    wasserstein = float(stats.wasserstein_distance(a, b))
    return NumericColumnDrift(
        statistic=float(ks.statistic),
        p_value=float(ks.pvalue),
        effect=float(ks.statistic),
        wasserstein=wasserstein,
        wasserstein_scaled=wasserstein / scale if scale > 0 else None,
        reference=_numeric_summary(a),
        batch=_numeric_summary(b),
    )


def _numeric_summary(x: np.ndarray) -> NumericSummary:
    if x.size == 0:  # no observed value: NaN, which drift.json writes as null
        return NumericSummary(
            n=0, mean=math.nan, std=math.nan, p05=math.nan, median=math.nan, p95=math.nan
        )
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return NumericSummary(
        n=int(x.size),
        mean=float(np.mean(x)),
        std=float(np.std(x)),
        p05=float(q05),
        median=float(q50),
        p95=float(q95),
    )


def _pooled_table(ref_counts: pd.Series, new_counts: pd.Series) -> tuple[pd.DataFrame, int]:
    """2 x k counts with rare categories pooled, and how many categories were pooled.

    A category is rare when its smaller expected count (under "same distribution") is below 5,
    the usual validity condition of the chi-square approximation.
    """
    table = pd.concat([ref_counts, new_counts], axis=1, keys=["reference", "batch"]).fillna(0)
    total = table.sum(axis=1)
    n_ref, n_new = table["reference"].sum(), table["batch"].sum()
    min_expected = total * min(n_ref, n_new) / (n_ref + n_new)
    rare = min_expected < 5
    if rare.sum() >= 1 and (~rare).sum() >= 1:
        pooled = table[rare].sum().rename(POOLED)
        table = pd.concat([table[~rare], pooled.to_frame().T])
    elif rare.all():
        table = table.sum().rename(POOLED).to_frame().T
    return table.astype(float), int(rare.sum())


def _chi2(table: pd.DataFrame) -> tuple[float, float]:
    """Chi-square statistic and p-value of a 2 x k table (0, 1 when k < 2)."""
    table = table[(table.sum(axis=1) > 0)]
    if len(table) < 2:
        return 0.0, 1.0
    res = stats.chi2_contingency(table.to_numpy().T, correction=False)
    return float(res.statistic), float(res.pvalue)


def _categorical_column(
    ref: pd.Series, new: pd.Series, *, level: float, random_state: int
) -> CategoricalColumnDrift:
    """Chi-square test of a categorical column; ``new`` holds the batch's values, gaps filled.

    A batch too small for chi-square is tested by :func:`counts_test`'s Monte Carlo instead,
    with the raw total variation distance as its effect.
    """
    ref_counts = ref.astype(str).value_counts()
    new_counts = new.astype(str).value_counts()
    found = counts_test(ref_counts, new_counts, level=level, random_state=random_state)
    note = NO_VALUES if new_counts.sum() == 0 else found.note
    return CategoricalColumnDrift(
        test=found.test,
        statistic=found.statistic,
        p_value=found.p_value,
        effect=found.tvd,
        categories_tested=found.categories_tested,
        pooled_categories=found.pooled_categories,
        new_categories=sorted(str(c) for c in set(new_counts.index) - set(ref_counts.index)),
        top_moves=_top_moves(ref_counts, new_counts) if new_counts.sum() else [],
        reference=CategoryCounts(n=int(ref_counts.sum()), categories=int(len(ref_counts))),
        batch=CategoryCounts(n=int(new_counts.sum()), categories=int(len(new_counts))),
        note=note,
    )


@dataclass(frozen=True)
class CountsTest:
    """Whether a batch's counts over categories (or clusters) fit the reference's.

    ``test`` is ``"chi2_contingency"`` (the pooled 2 x k table, effect: total variation on it)
    or, when the batch is too small for any category to keep an expected count of 5,
    ``"monte_carlo_multinomial"`` (effect: the raw total variation distance). ``p_value`` and
    ``statistic`` are None, and ``note`` says why, when not even the most extreme batch of this
    size could reach ``level``.
    """

    test: str
    statistic: float | None
    p_value: float | None
    tvd: float | None
    categories_tested: int
    pooled_categories: int
    note: str | None = None


def counts_test(
    ref_counts: pd.Series,
    new_counts: pd.Series,
    *,
    level: float,
    random_state: int,
    draws: int = MONTE_CARLO_DRAWS,
) -> CountsTest:
    """Test whether the batch's counts fit the reference's: chi-square, or exactly enough.

    Large batches keep the chi-square test of the pooled 2 x k table. When pooling leaves
    fewer than two categories (every expected count below 5) but the two sides have two or
    more, the chi-square approximation has nothing valid to test and the batch is tested for
    goodness of fit to the reference proportions by a seeded Monte Carlo: ``draws`` multinomial
    batches of the same size, Pearson's statistic, ``p = (1 + #(draw >= observed)) / (1 +
    draws)``. A category the reference lacks gets the share of one reference row. When even the
    most extreme batch (every row in the rarest reference category, probability
    ``min share ** n``) could not reach ``level``, nothing is tested.
    """
    n_new = int(new_counts.sum())
    if n_new == 0:
        return CountsTest("chi2_contingency", None, None, None, 0, 0)
    pooled, n_pooled = _pooled_table(ref_counts, new_counts)
    ids = list(dict.fromkeys([*ref_counts.index, *new_counts.index]))
    if len(pooled[pooled.sum(axis=1) > 0]) >= 2 or len(ids) < 2:
        statistic, p_value = _chi2(pooled)
        p = pooled["reference"] / pooled["reference"].sum()
        q = pooled["batch"] / pooled["batch"].sum()
        tvd = float(0.5 * np.abs(q - p).sum())
        return CountsTest("chi2_contingency", statistic, p_value, tvd, int(len(pooled)), n_pooled)
    ref = ref_counts.reindex(ids, fill_value=0).to_numpy(dtype=float)
    new = new_counts.reindex(ids, fill_value=0).to_numpy(dtype=float)
    n_ref = ref.sum()
    tvd = float(0.5 * np.abs(new / n_new - ref / n_ref).sum())
    test = "monte_carlo_multinomial"
    if float(np.min(ref[ref > 0] / n_ref)) ** n_new >= level:
        return CountsTest(test, None, None, tvd, len(ids), 0, TOO_FEW_ROWS)
    share = np.where(ref > 0, ref, 1.0) / n_ref  # an unseen category: one reference row
    share /= share.sum()
    expected = n_new * share
    observed = float(np.sum((new - expected) ** 2 / expected))
    rng = np.random.default_rng(random_state)
    simulated = rng.multinomial(n_new, share, size=draws)
    pearson = np.sum((simulated - expected) ** 2 / expected, axis=1)
    # Ties are "as extreme"; the tolerance keeps them so through floating-point rounding.
    hits = int(np.count_nonzero(pearson >= observed - 1e-9 * max(1.0, observed)))
    return CountsTest(test, observed, (1 + hits) / (1 + draws), tvd, len(ids), 0)


def _top_moves(ref_counts: pd.Series, new_counts: pd.Series, top: int = 5) -> list[CategoryMove]:
    """Return the ``top`` categories whose share of rows moved most, largest move first."""
    ref_share = ref_counts / ref_counts.sum()
    new_share = new_counts / new_counts.sum()
    shares = pd.concat([ref_share, new_share], axis=1, keys=["reference", "batch"]).fillna(0.0)
    moved = (shares["batch"] - shares["reference"]).abs().sort_values(ascending=False)
    return [
        CategoryMove(
            category=str(cat),
            reference=float(shares.at[cat, "reference"]),
            batch=float(shares.at[cat, "batch"]),
        )
        for cat in moved.index[:top]
    ]
