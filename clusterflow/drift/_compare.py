"""Compare a batch with the champion's reference, view by view: :func:`compare`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.drift._result import DriftResult, _reasons
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

    reasons = _reasons(columns, embedding, clusters, novelty)

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
