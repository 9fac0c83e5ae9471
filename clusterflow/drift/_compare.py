"""Compare a batch with the champion's reference, view by view: :func:`compare`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from clusterflow.drift._evidence import ColumnDrift
from clusterflow.drift._result import DriftResult
from clusterflow.drift._sample import DriftSample
from clusterflow.drift._statistics import _categorical_column, _numeric_column, holm
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
    columns = _column_views(
        reference.table, batch.table, list(numeric_columns), list(categorical_columns), thresholds
    )
    return DriftResult.from_views(
        columns,
        _embedding_view(reference.embeddings, batch.embeddings, thresholds, random_state),
        _cluster_view(reference.clusters, batch.clusters, thresholds),
        _novelty_view(reference, batch, thresholds),
        thresholds,
    )


def _column_views(
    ref: pd.DataFrame,
    new: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    thresholds: DriftThresholds,
) -> dict[str, ColumnDrift]:
    """Check the columns, test each, adjust the p-values for their number (Holm), mark drift.

    A column drifts when its adjusted p-value is below ``column_p_value`` and its effect above
    ``column_effect``. Numeric columns come first, each group in the order given.
    """
    _check_columns(ref, new, numeric, categorical)
    tested: dict[str, ColumnDrift] = {}
    for col in numeric:
        tested[col] = _numeric_column(ref[col], new[col])
    for col in categorical:
        tested[col] = _categorical_column(ref[col], new[col])
    adjusted = holm([view.p_value for view in tested.values()])
    return {
        col: replace(
            view,
            p_value_adjusted=float(p_adj),
            drifted=bool(
                p_adj < thresholds.column_p_value and view.effect > thresholds.column_effect
            ),
        )
        for (col, view), p_adj in zip(tested.items(), adjusted, strict=True)
    }


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
