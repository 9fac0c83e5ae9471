"""The pandera schemas of the two validation passes and of the imputed rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from clusterflow.schema._roles import ColumnRoles


def _finite(series: pd.Series) -> pd.Series:
    return series.isna() | np.isfinite(series.to_numpy(dtype=float, na_value=np.nan))


def _first_occurrence(series: pd.Series) -> pd.Series:
    return series.isna() | ~series.duplicated(keep="first")


def _types_schema(roles: ColumnRoles) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {c: pa.Column(float, coerce=True, nullable=True) for c in roles.numeric},
        strict=False,
        name="UncheckedRecords",
    )


def _checks_schema(roles: ColumnRoles, max_text_chars: int | None) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {
        c: pa.Column(
            float,
            nullable=True,
            checks=pa.Check(_finite, name="finite"),
        )
        for c in roles.numeric
    }
    if roles.id_column:
        columns[roles.id_column] = pa.Column(
            nullable=False,
            checks=pa.Check(_first_occurrence, name="unique_id"),
        )
    if roles.text_column and max_text_chars:
        columns[roles.text_column] = pa.Column(
            nullable=True,
            checks=pa.Check(
                lambda s: s.isna() | (s.astype(str).str.len() <= max_text_chars),
                name="text_length",
            ),
        )
    usable = list(roles.features) + ([roles.text_column] if roles.text_column else [])

    def has_feature(frame: pd.DataFrame) -> pd.Series:
        present = frame[usable].notna()
        if roles.text_column:
            text = frame[roles.text_column]
            present[roles.text_column] = text.notna() & text.astype(str).str.strip().ne("")
        return present.any(axis=1)

    return pa.DataFrameSchema(
        columns,
        # ignore_na=False: by default pandera passes a row with gaps, so an all-empty row would slip
        checks=[pa.Check(has_feature, name="has_feature", ignore_na=False)],
        strict=False,
        name="Records",
    )


def post_impute_schema(
    roles: ColumnRoles, categories: dict[str, list] | None = None
) -> pa.DataFrameSchema:
    """Return the schema imputed rows must meet: no gaps, finite numbers, known categories."""
    columns: dict[str, pa.Column] = {
        c: pa.Column(float, nullable=False, checks=pa.Check(_finite, name="finite"))
        for c in roles.numeric
    }
    for c in roles.categorical:
        checks = []
        if categories and c in categories:
            checks.append(pa.Check.isin([str(v) for v in categories[c]]))
        columns[c] = pa.Column(str, nullable=False, coerce=True, checks=checks)
    return pa.DataFrameSchema(columns, strict=False, name="ImputedRecords")
