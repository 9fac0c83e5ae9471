"""Drift of a new batch against the champion's reference: pure statistics, no I/O.

:func:`compare` looks at four views of the same two samples and says, for each, whether the batch
moved far enough *and* surely enough to matter:

========================  ============================================  ===========================
view                      test (significance)                           effect size (magnitude)
========================  ============================================  ===========================
numeric column            two-sample Kolmogorov-Smirnov                 KS statistic D
categorical column        chi-square on the 2 x k contingency table,    total variation distance
                          categories with an expected count < 5 pooled  on the pooled table
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
corrected for the number of columns with Holm's step-down method (family-wise error rate).

Both KS D and the total variation distance read the same way: the largest difference, between
reference and batch, in the probability of one event ("speed <= 130", "sky is Overcast").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from clusterflow.config import DriftConfig
from clusterflow.errors import ConfigError, EmbeddingError, ValidationFailed

__all__ = [
    "DriftResult",
    "DriftSample",
    "DriftThresholds",
    "compare",
    "domain_classifier_auc",
    "holm",
    "psi",
]

#: Name given to the pooled rare categories of a categorical column.
POOLED = "(other)"
#: Fewer rows than this on either side and the domain classifier is not run.
MIN_EMBEDDING_ROWS = 20


class DriftThresholds(DriftConfig):
    """When a difference between reference and batch counts as drift.

    The fields, defaults and bounds are :class:`clusterflow.config.DriftConfig`'s (defined once
    there, with a description each; the README's drift table quotes them). This subclass only
    turns an out-of-range value into a :class:`ConfigError` naming the field, as the library's
    other options do.

    Notes
    -----
    ``column_p_value`` is the family-wise level of the per-column tests (Holm) and the level of the
    embedding, cluster-mix and novelty tests. ``column_effect`` is KS D for numeric columns and the
    total variation distance for categorical ones. ``cluster_psi`` reads as usual (< 0.1 stable,
    0.1-0.2 moderate, > 0.2 shifted). ``novelty_share`` is the increase of the novel share, batch
    minus reference.
    """

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            fields = sorted({str(e["loc"][0]) for e in err.errors() if e.get("loc")})
            bad = ", ".join(f"{name}={values.get(name)!r}" for name in fields)
            raise ConfigError(
                f"drift thresholds out of range: {bad}",
                hint="p-value in (0, 1), effects and shares in [0, 1], text_auc in [0.5, 1], "
                "min_columns >= 1, cv_folds >= 2",
            ) from err


@dataclass
class DriftSample:
    """One side of a drift comparison, as the champion model sees it.

    Parameters
    ----------
    table : pandas.DataFrame
        Imputed feature columns (numeric and categorical), without missing values.
    embeddings : numpy.ndarray or None
        ``(n_rows, dim)`` L2-normalised text embeddings, or None for a tabular-only model.
    clusters : numpy.ndarray
        ``(n_rows,)`` integer cluster ids assigned by the champion (-1 = noise).
    distances : numpy.ndarray
        ``(n_rows,)`` distance of each row to its nearest cluster centre.
    novel : numpy.ndarray
        ``(n_rows,)`` bool, the row is far from every cluster.
    """

    table: pd.DataFrame
    embeddings: np.ndarray | None
    clusters: np.ndarray
    distances: np.ndarray
    novel: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.table)
        if n == 0:
            raise ValidationFailed(
                "drift sample has no rows", hint="compare needs at least one row on each side"
            )
        self.clusters = np.asarray(self.clusters)
        self.distances = np.asarray(self.distances, dtype=float)
        self.novel = np.asarray(self.novel, dtype=bool)
        for name in ("clusters", "distances", "novel"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValidationFailed(
                    f"drift sample field {name!r} has shape {arr.shape}, expected ({n},) "
                    "(one value per row of the table)",
                    hint="pass one value per table row",
                )
        if not np.issubdtype(self.clusters.dtype, np.integer):
            raise ValidationFailed(
                f"drift sample clusters have dtype {self.clusters.dtype}, expected integers",
                hint="pass the champion's integer cluster ids (-1 for noise)",
            )
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings, dtype=float)
            if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
                raise EmbeddingError(
                    f"drift sample embeddings have shape {self.embeddings.shape}, "
                    f"expected ({n}, dim) (one vector per table row)",
                    hint="embed every row of the table, or pass embeddings=None",
                )

    @classmethod
    def from_assignments(
        cls,
        table: pd.DataFrame,
        assignments: pd.DataFrame,
        embeddings: np.ndarray | None = None,
        *,
        prefix: str = "",
    ) -> DriftSample:
        """Build a sample from a table and the champion's per-row assignments.

        Parameters
        ----------
        table : pandas.DataFrame
            Imputed feature columns.
        assignments : pandas.DataFrame
            Columns ``<prefix>cluster``, ``<prefix>distance`` and ``<prefix>novel``, one row per
            table row, in the same order (the output of ``ClusterModel.predict`` with
            ``prefix=""``, or a stored reference with ``prefix="__"``).
        embeddings : numpy.ndarray, optional
            Text embeddings of the rows.
        prefix : str, default=""
            Prefix of the three assignment columns.

        Returns
        -------
        DriftSample

        Raises
        ------
        ValidationFailed
            An assignment column is missing, or the lengths differ.
        """
        names = [f"{prefix}{name}" for name in ("cluster", "distance", "novel")]
        missing = [name for name in names if name not in assignments.columns]
        if missing:
            raise ValidationFailed(
                f"assignments have no column(s) {missing} (they have {list(assignments.columns)})",
                hint="pass the champion's predictions (cluster, distance, novel) for these rows",
            )
        return cls(
            table=table.drop(columns=[c for c in names if c in table.columns]),
            embeddings=embeddings,
            clusters=assignments[names[0]].to_numpy(dtype=int),
            distances=assignments[names[1]].to_numpy(dtype=float),
            novel=assignments[names[2]].to_numpy(dtype=bool),
        )


@dataclass
class DriftResult:
    """What :func:`compare` found.

    Attributes
    ----------
    drift_detected : bool
        The overall verdict (see :func:`compare` for the rule).
    columns : dict
        Per column: ``kind``, ``test``, ``statistic``, ``p_value`` (raw), ``p_value_adjusted``
        (Holm), ``effect``, ``effect_name``, ``drifted`` and summary statistics of both sides.
    embedding : dict
        ``method``, ``auc``, ``p_value``, ``threshold``, ``drifted`` (``method`` is ``"none"``
        when either side has no embeddings).
    clusters : dict
        Reference and batch proportions per cluster id, ``psi``, ``js``, ``p_value``,
        ``drifted``.
    novelty : dict
        Novel share and noise share of both sides, mean distance to the nearest centre of both
        sides, ``p_value``, ``drifted``.
    reasons : list of str
        One human sentence per drifted view.
    thresholds : dict
        The thresholds used.
    """

    drift_detected: bool
    columns: dict[str, dict[str, Any]]
    embedding: dict[str, Any]
    clusters: dict[str, Any]
    novelty: dict[str, Any]
    reasons: list[str]
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, largest effect first."""
        drifted = [(c, info["effect"]) for c, info in self.columns.items() if info["drifted"]]
        return [c for c, _ in sorted(drifted, key=lambda item: -item[1])]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-safe Python (NaN and infinities become None)."""
        return _json_safe(
            {
                "drift_detected": self.drift_detected,
                "drifted_columns": self.drifted_columns,
                "reasons": self.reasons,
                "columns": self.columns,
                "embedding": self.embedding,
                "clusters": self.clusters,
                "novelty": self.novelty,
                "thresholds": self.thresholds,
            }
        )


def compare(
    reference: DriftSample,
    batch: DriftSample,
    *,
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
    thresholds: DriftThresholds | None = None,
    random_state: int = 0,
) -> DriftResult:
    """Compare a batch with the reference the champion was trained on.

    ``drift_detected`` is true when at least ``thresholds.min_columns`` columns drifted, or the
    text embeddings, the cluster mix or the novel share drifted.

    Parameters
    ----------
    reference : DriftSample
        The champion's training data (or a sample of it), as the champion sees it.
    batch : DriftSample
        The new batch, imputed, embedded and scored by the same champion.
    numeric_columns : sequence of str
        Columns of both tables compared with the KS test.
    categorical_columns : sequence of str
        Columns of both tables compared with the chi-square test (values compared as strings).
    thresholds : DriftThresholds, optional
        When a difference counts as drift; ``DriftThresholds()`` if omitted.
    random_state : int, default=0
        Seed of the domain classifier's subsampling and folds.

    Returns
    -------
    DriftResult
        The verdict, the evidence per view and one sentence per drifted view.

    Raises
    ------
    ConfigError
        A column is listed twice, or is missing from either table.
    ValidationFailed
        A compared column has missing values or a numeric column is not numeric.
    EmbeddingError
        The two sides' embeddings have different dimensions.
    """
    thresholds = DriftThresholds() if thresholds is None else thresholds
    numeric_columns = list(numeric_columns)
    categorical_columns = list(categorical_columns)
    _check_columns(reference.table, batch.table, numeric_columns, categorical_columns)

    columns: dict[str, dict[str, Any]] = {}
    for col in numeric_columns:
        columns[col] = _numeric_column(reference.table[col], batch.table[col])
    for col in categorical_columns:
        columns[col] = _categorical_column(reference.table[col], batch.table[col])
    adjusted: Sequence[float] | np.ndarray = (
        holm([info["p_value"] for info in columns.values()]) if columns else []
    )
    for info, p_adj in zip(columns.values(), adjusted, strict=True):
        info["p_value_adjusted"] = float(p_adj)
        info["drifted"] = bool(
            p_adj < thresholds.column_p_value and info["effect"] > thresholds.column_effect
        )

    embedding = _embedding_view(reference.embeddings, batch.embeddings, thresholds, random_state)
    clusters = _cluster_view(reference.clusters, batch.clusters, thresholds)
    novelty = _novelty_view(reference, batch, thresholds)

    reasons = [_column_reason(col, columns[col]) for col in _drifted_sorted(columns)]
    if embedding["drifted"]:
        reasons.append(
            f"text embeddings: a classifier tells batch from reference with ROC AUC "
            f"{embedding['auc']:.3f} (threshold {embedding['threshold']:.2f}, "
            f"p={_fmt_p(embedding['p_value'])})"
        )
    if clusters["drifted"]:
        reasons.append(_cluster_reason(clusters))
    if novelty["drifted"]:
        reasons.append(
            f"novelty: {novelty['batch_novel_share']:.1%} of batch rows are far from every "
            f"cluster, against {novelty['reference_novel_share']:.1%} of reference rows "
            f"(binomial p={_fmt_p(novelty['p_value'])})"
        )

    n_drifted = sum(info["drifted"] for info in columns.values())
    drift_detected = bool(
        n_drifted >= thresholds.min_columns
        or embedding["drifted"]
        or clusters["drifted"]
        or novelty["drifted"]
    )
    return DriftResult(
        drift_detected=drift_detected,
        columns=columns,
        embedding=embedding,
        clusters=clusters,
        novelty=novelty,
        reasons=reasons,
        thresholds=thresholds.model_dump(),
    )


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


# --- per-view helpers -----------------------------------------------------------------------


def _check_columns(
    ref: pd.DataFrame, new: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> None:
    listed = numeric + categorical
    duplicated = sorted({c for c in listed if listed.count(c) > 1})
    if duplicated:
        raise ConfigError(
            f"columns listed more than once for drift: {duplicated}",
            hint="list each column as either numeric or categorical, once",
        )
    for side, table in (("reference", ref), ("batch", new)):
        missing = [c for c in listed if c not in table.columns]
        if missing:
            raise ConfigError(
                f"{side} table has no column(s) {missing} (it has {list(table.columns)})",
                hint="compare only the model's feature columns, present on both sides",
            )
        gaps = [c for c in listed if table[c].isna().any()]
        if gaps:
            raise ValidationFailed(
                f"{side} table has missing values in column(s) {gaps}",
                hint="impute the batch with the champion's imputer before comparing",
            )
        not_numeric = [c for c in numeric if not pd.api.types.is_numeric_dtype(table[c])]
        if not_numeric:
            raise ValidationFailed(
                f"{side} table column(s) {not_numeric} are listed as numeric but hold "
                f"{[str(table[c].dtype) for c in not_numeric]}",
                hint="list them as categorical, or convert them to numbers first",
            )


def _numeric_column(ref: pd.Series, new: pd.Series) -> dict[str, Any]:
    a = ref.to_numpy(dtype=float)
    b = new.to_numpy(dtype=float)
    ks = stats.ks_2samp(a, b)
    scale = float(np.std(a))
    wasserstein = float(stats.wasserstein_distance(a, b))
    return {
        "kind": "numeric",
        "test": "ks_2samp",
        "statistic": float(ks.statistic),
        "p_value": float(ks.pvalue),
        "effect": float(ks.statistic),
        "effect_name": "KS D",
        "wasserstein": wasserstein,
        "wasserstein_scaled": wasserstein / scale if scale > 0 else None,
        "reference": _numeric_summary(a),
        "batch": _numeric_summary(b),
    }


def _numeric_summary(x: np.ndarray) -> dict[str, float]:
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {
        "n": int(x.size),
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "p05": float(q05),
        "median": float(q50),
        "p95": float(q95),
    }


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


def _categorical_column(ref: pd.Series, new: pd.Series) -> dict[str, Any]:
    ref_counts = ref.astype(str).value_counts()
    new_counts = new.astype(str).value_counts()
    pooled, n_pooled = _pooled_table(ref_counts, new_counts)
    statistic, p_value = _chi2(pooled)
    p = pooled["reference"] / pooled["reference"].sum()
    q = pooled["batch"] / pooled["batch"].sum()
    tvd = float(0.5 * np.abs(q - p).sum())
    ref_share = ref_counts / ref_counts.sum()
    new_share = new_counts / new_counts.sum()
    shares = pd.concat([ref_share, new_share], axis=1, keys=["reference", "batch"]).fillna(0.0)
    moved = (shares["batch"] - shares["reference"]).abs().sort_values(ascending=False)
    top = [
        {
            "category": str(cat),
            "reference": float(shares.at[cat, "reference"]),
            "batch": float(shares.at[cat, "batch"]),
        }
        for cat in moved.index[:5]
    ]
    return {
        "kind": "categorical",
        "test": "chi2_contingency",
        "statistic": statistic,
        "p_value": p_value,
        "effect": tvd,
        "effect_name": "total variation",
        "categories_tested": int(len(pooled)),
        "pooled_categories": n_pooled,
        "new_categories": sorted(str(c) for c in set(new_counts.index) - set(ref_counts.index)),
        "top_moves": top,
        "reference": {"n": int(ref_counts.sum()), "categories": int(len(ref_counts))},
        "batch": {"n": int(new_counts.sum()), "categories": int(len(new_counts))},
    }


def _embedding_view(
    ref: np.ndarray | None, new: np.ndarray | None, th: DriftThresholds, random_state: int
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "method": "none",
        "auc": None,
        "p_value": None,
        "threshold": th.text_auc,
        "drifted": False,
    }
    if ref is None or new is None:
        view["note"] = "no text embeddings on " + ("either side" if ref is new else "one side")
        return view
    if ref.shape[1] != new.shape[1]:
        raise EmbeddingError(
            f"embedding dimensions differ: reference {ref.shape[1]}, batch {new.shape[1]}",
            hint="embed the batch with the champion's embedding model",
        )
    if min(len(ref), len(new)) < MIN_EMBEDDING_ROWS:
        view["note"] = f"fewer than {MIN_EMBEDDING_ROWS} rows on one side: not tested"
        return view
    found = domain_classifier_auc(
        ref,
        new,
        max_rows=th.max_embedding_rows,
        cv_folds=th.cv_folds,
        random_state=random_state,
    )
    view.update(found)
    view["method"] = "domain_classifier_logreg_cv_auc"
    view["drifted"] = bool(found["auc"] > th.text_auc and found["p_value"] < th.column_p_value)
    return view


def _cluster_view(ref: np.ndarray, new: np.ndarray, th: DriftThresholds) -> dict[str, Any]:
    ref_counts = pd.Series(ref).value_counts()
    new_counts = pd.Series(new).value_counts()
    ids = sorted(set(ref_counts.index) | set(new_counts.index))
    rc = ref_counts.reindex(ids, fill_value=0).to_numpy(dtype=float)
    nc = new_counts.reindex(ids, fill_value=0).to_numpy(dtype=float)
    index = psi(rc, nc, epsilon=th.psi_epsilon)
    js = float(jensenshannon(rc / rc.sum(), nc / nc.sum(), base=2))
    _, p_value = _chi2(_pooled_table(ref_counts.rename(str), new_counts.rename(str))[0])
    ref_prop = rc / rc.sum()
    new_prop = nc / nc.sum()
    return {
        "ids": [int(i) for i in ids],
        "reference": {str(int(i)): float(v) for i, v in zip(ids, ref_prop, strict=True)},
        "batch": {str(int(i)): float(v) for i, v in zip(ids, new_prop, strict=True)},
        "psi": index,
        "js": js,
        "p_value": p_value,
        "threshold": th.cluster_psi,
        "drifted": bool(index > th.cluster_psi and p_value < th.column_p_value),
    }


def _novelty_view(ref: DriftSample, new: DriftSample, th: DriftThresholds) -> dict[str, Any]:
    n_ref, n_new = len(ref.novel), len(new.novel)
    ref_share = float(ref.novel.mean())
    new_share = float(new.novel.mean())
    # A reference with no novel row would make any single novel batch row "impossible".
    null_share = min(max(ref_share, 1.0 / n_ref), 1.0)
    p_value = float(
        stats.binomtest(int(new.novel.sum()), n_new, null_share, alternative="greater").pvalue
    )
    mean_ref = _finite_mean(ref.distances)
    mean_new = _finite_mean(new.distances)
    return {
        "reference_novel_share": ref_share,
        "batch_novel_share": new_share,
        "reference_noise_share": float(np.mean(ref.clusters == -1)),
        "batch_noise_share": float(np.mean(new.clusters == -1)),
        "reference_mean_distance": mean_ref,
        "batch_mean_distance": mean_new,
        "distance_ratio": mean_new / mean_ref if mean_ref and mean_new is not None else None,
        "p_value": p_value,
        "threshold": th.novelty_share,
        "drifted": bool(new_share - ref_share > th.novelty_share and p_value < th.column_p_value),
    }


# --- sentences and JSON ---------------------------------------------------------------------


def _drifted_sorted(columns: dict[str, dict[str, Any]]) -> list[str]:
    drifted = [(c, info["effect"]) for c, info in columns.items() if info["drifted"]]
    return [c for c, _ in sorted(drifted, key=lambda item: -item[1])]


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-300 else "<1e-300"


def _fmt_num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _column_reason(col: str, info: dict[str, Any]) -> str:
    if info["kind"] == "numeric":
        r, b = info["reference"], info["batch"]
        return (
            f"column {col}: mean {_fmt_num(r['mean'])} -> {_fmt_num(b['mean'])}, median "
            f"{_fmt_num(r['median'])} -> {_fmt_num(b['median'])} (KS D={info['effect']:.3f}, "
            f"Holm p={_fmt_p(info['p_value_adjusted'])})"
        )
    moves = ", ".join(
        f"{m['category']!r} {m['reference']:.1%} -> {m['batch']:.1%}" for m in info["top_moves"][:2]
    )
    new = f"; new categories: {info['new_categories'][:3]}" if info["new_categories"] else ""
    return (
        f"column {col}: {moves}{new} (total variation {info['effect']:.3f}, chi-square Holm "
        f"p={_fmt_p(info['p_value_adjusted'])})"
    )


def _cluster_reason(view: dict[str, Any]) -> str:
    ref, new = view["reference"], view["batch"]
    biggest = max(ref, key=lambda k: abs(new[k] - ref[k]))
    return (
        f"cluster mix: cluster {biggest} {ref[biggest]:.1%} -> {new[biggest]:.1%} of rows "
        f"(PSI {view['psi']:.3f} > {view['threshold']:.2f}, JS {view['js']:.3f})"
    )


def _finite_mean(x: np.ndarray) -> float | None:
    # Noise rows may carry an infinite distance; the mean describes the rows that have one.
    finite = x[np.isfinite(x)]
    return float(np.mean(finite)) if finite.size else None


def _floored_proportions(x: np.ndarray, epsilon: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    total = x.sum()
    if total <= 0:
        raise ValidationFailed(
            "proportions sum to zero", hint="pass counts or proportions with a positive total"
        )
    p = np.maximum(x / total, epsilon)
    return p / p.sum()


def _json_safe(obj: Any) -> Any:
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
