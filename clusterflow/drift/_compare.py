"""Compare a batch with the champion's reference, view by view: :func:`compare`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from clusterflow.drift._evidence import ColumnDrift, MissingShare
from clusterflow.drift._result import DriftResult
from clusterflow.drift._sample import DriftSample
from clusterflow.drift._statistics import (
    _categorical_column,
    _numeric_column,
    holm,
    share_rose,
)
from clusterflow.drift._thresholds import DriftThresholds
from clusterflow.drift._views import _cluster_view, _embedding_view, _novelty_view
from clusterflow.errors import ConfigError, ValidationFailed

__all__ = ["compare"]


def compare(
    reference: DriftSample,
    batch: DriftSample,
    *,
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
    thresholds: DriftThresholds | None = None,
    random_state: int = 0,
    reference_missing: Mapping[str, float] | None = None,
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
        Seed of the domain classifier's subsampling and folds, and of the Monte Carlo test of
        a batch too small for chi-square.
    reference_missing : mapping of str to float, optional
        Share of blank cells per column in the training rows (the model's
        ``missing_shares``). A column's blank share in the batch (``batch.missing``) is tested
        against it; without it (a model saved before it was recorded) it is only reported.

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
    numeric, categorical = list(numeric_columns), list(categorical_columns)
    _check_columns(reference.table, batch.table, numeric, categorical)
    columns = _column_views(
        reference.table,
        batch,
        numeric,
        categorical,
        thresholds,
        random_state,
        reference_missing,
    )
    return DriftResult.from_views(
        columns,
        _embedding_view(reference.embeddings, batch.embeddings, thresholds, random_state),
        _cluster_view(reference.clusters, batch.clusters, thresholds, random_state),
        _novelty_view(reference, batch, thresholds),
        thresholds,
    )


def _column_views(
    ref: pd.DataFrame,
    batch: DriftSample,
    numeric: list[str],
    categorical: list[str],
    thresholds: DriftThresholds,
    random_state: int,
    reference_missing: Mapping[str, float] | None,
) -> dict[str, ColumnDrift]:
    """Test each column and its blank share, adjust the p-values together (Holm), mark drift.

    A column's distribution is compared with the batch's gaps filled by the imputer, as the
    reference's are (it keeps imputed training rows, without their blank mask): comparing the
    batch's observed cells with a reference that holds fills would call a batch like the
    training rows drift whenever a column has gaps (20% blank and filled with the median: KS
    D=0.10, p=1e-13). Gaps themselves are what the blank-share test sees. A column drifts
    when its adjusted p-value is below ``column_p_value`` and its effect above
    ``column_effect``, or when its blank share rose by more than ``column_effect`` with an
    adjusted p-value below ``column_p_value``. Numeric columns come first, each group in the
    order given.
    """
    new = batch.table
    tested: dict[str, ColumnDrift] = {}
    for col in numeric:
        tested[col] = _numeric_column(ref[col], new[col])
    for col in categorical:
        tested[col] = _categorical_column(
            ref[col],
            new[col],
            level=thresholds.column_p_value,
            random_state=random_state,
        )
    blanks = {col: _missing_share(batch, col, reference_missing) for col in tested}
    raw = [((col, "column"), view.p_value) for col, view in tested.items()]
    raw += [((col, "missing"), m.p_value) for col, m in blanks.items() if m is not None]
    family = {key: p for key, p in raw if p is not None}  # the tests that were run
    adjusted = dict(zip(family, map(float, holm(list(family.values()))), strict=True))
    level, effect = thresholds.column_p_value, thresholds.column_effect
    out: dict[str, ColumnDrift] = {}
    for col, view in tested.items():
        missing = blanks[col]
        if missing is not None and (col, "missing") in adjusted:
            p_adj = adjusted[col, "missing"]
            missing = replace(
                missing,
                p_value_adjusted=p_adj,
                drifted=bool(p_adj < level and (missing.rise or 0.0) > effect),
            )
        p_col = adjusted.get((col, "column"))
        shifted = p_col is not None and p_col < level and (view.effect or 0.0) > effect
        out[col] = replace(
            view,
            missing=missing,
            p_value_adjusted=p_col,
            drifted=bool(shifted or (missing is not None and missing.drifted)),
        )
    return out


def _missing_share(
    batch: DriftSample, col: str, reference_missing: Mapping[str, float] | None
) -> MissingShare | None:
    """Return the batch's blank share of ``col``, tested (one-sided binomial) against training.

    The floor of the training share is one row of the batch, as for the rows failing
    validation (:mod:`clusterflow.monitoring`): a training share of 0 would make a single blank
    "impossible". None when the batch carries no mask.
    """
    if batch.missing is None or col not in batch.missing.columns:
        return None
    blank = int(batch.missing[col].sum())
    n = len(batch.missing)
    share = blank / n
    trained = None if reference_missing is None else reference_missing.get(col)
    if trained is None:
        return MissingShare(
            reference_share=None,
            batch_share=share,
            batch_missing=blank,
            rise=None,
            p_value=None,
            note="not tested: the model did not record its training rows' blank share",
        )
    p_value, _ = share_rose(blank, n, trained, floor=1.0 / n, min_rise=1.0, level=0.0)
    return MissingShare(
        reference_share=float(trained),
        batch_share=share,
        batch_missing=blank,
        rise=share - float(trained),
        p_value=p_value,
    )


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
