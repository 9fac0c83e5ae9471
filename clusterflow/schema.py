"""Column roles and validation at the boundary between raw input and the pipeline.

Raw data is *unchecked* until :func:`validate_records` has run. Validation is lazy (pandera collects
every failure, not the first) and row-level: a row that fails any check goes to the quarantine with
the reasons, in words, and is excluded from training. Nothing is silently dropped.

Validation runs in two pandera passes so that every failure is reported:

1. *types*: each numeric column must coerce to float (``"abc"`` in a number column fails here);
2. *checks*: on the coerced values (the cells that failed pass 1 blanked): numbers finite, the id
   unique (the first occurrence is kept), and every row carrying at least one usable feature.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from clusterflow.errors import ConfigError, ValidationFailed

ROW_ID = "row"
"""Name of the id column when the user gives none: the 0-based row number."""

_NUMERIC_SHARE = 0.9
"""A text column whose non-empty values parse as numbers at least this often is numeric."""


@dataclass(frozen=True)
class ColumnRoles:
    """What each input column is used for.

    Attributes
    ----------
    id_column : str or None
        The user's row identifier, or None for the row number.
    text_column : str or None
        The free-text column that is embedded.
    numeric, categorical : tuple of str
        Feature columns, in input order.
    excluded : dict
        Column name to the reason it is not a feature (user choice, empty, constant, id-like...).
    """

    id_column: str | None
    text_column: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """Tabular feature columns (numeric then categorical)."""
        return self.numeric + self.categorical

    @property
    def id_name(self) -> str:
        """The name of the id column in the outputs."""
        return self.id_column or ROW_ID

    def to_dict(self) -> dict:
        """Return a JSON-safe description."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ColumnRoles:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id_column=data["id_column"],
            text_column=data["text_column"],
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            excluded=dict(data.get("excluded", {})),
        )


def _require_column(columns: Sequence[str], column: str, option: str, source: str) -> None:
    columns = list(columns)
    if column not in columns:
        shown = ", ".join(map(str, columns[:20])) + (" ..." if len(columns) > 20 else "")
        raise ConfigError(
            f"{source}: {option} {column!r} is not a column of the file (columns: {shown})",
            hint=f"pass one of the file's column names to {option}",
        )


def check_named_columns(
    columns: Sequence[str],
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    exclude_columns: Sequence[str] = (),
    source: str = "input",
) -> None:
    """Raise ConfigError if a column named in the options is not among ``columns``."""
    for column, option in ((text_column, "--text-column"), (id_column, "--id-column")):
        if column is not None:
            _require_column(columns, column, option, source)
    for column in exclude_columns:
        _require_column(columns, column, "--exclude-columns", source)


def _looks_like_timestamp(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(200)
    if sample.empty or sample.str.len().median() < 6:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= 0.9


_TIMESTAMP = "timestamp (derive numeric features from it to use it)"


def _value_kind(values: pd.Series, non_null: pd.Series) -> str | None:
    """Return ``"numeric"`` or ``"categorical"`` for a column's values, None for timestamps."""
    if pd.api.types.is_bool_dtype(values):
        return "categorical"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(values):
        return None
    as_text = non_null.astype(str).str.strip()
    parsed = pd.to_numeric(as_text, errors="coerce")
    if parsed.notna().mean() >= _NUMERIC_SHARE:
        return "numeric"
    if _looks_like_timestamp(non_null):
        return None
    return "categorical"


def _column_role(
    values: pd.Series, *, max_missing: float, max_categories: int
) -> tuple[str | None, str]:
    """Return a column's kind (``"numeric"``, ``"categorical"``), or None and why it is excluded."""
    non_null = values.dropna()
    if non_null.empty:
        return None, "entirely empty"
    missing = 1.0 - len(non_null) / len(values)
    if missing > max_missing:
        return None, (
            f"{missing:.0%} missing, more than max_missing={max_missing:.0%}: too sparse to "
            "impute credibly (raise --max-missing to use it)"
        )
    kind = _value_kind(values, non_null)
    if kind is None:
        return None, _TIMESTAMP
    n_unique = non_null.astype(str).nunique() if kind == "categorical" else non_null.nunique()
    if n_unique <= 1:
        return None, "constant (one distinct value)"
    if kind == "categorical" and n_unique > max_categories:
        return None, (
            f"{n_unique} distinct values, more than max_categories={max_categories}: "
            "looks like an id or free text (use it as --text-column, or raise --max-categories)"
        )
    return kind, ""


def infer_roles(
    frame: pd.DataFrame,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    exclude_columns: tuple[str, ...] = (),
    max_categories: int = 30,
    max_missing: float = 1.0,
    source: str = "input",
) -> ColumnRoles:
    """Decide the role of every column from the user's options and the values.

    Parameters
    ----------
    frame : pandas.DataFrame
        The unchecked, ingested rows.
    text_column, id_column : str, optional
        The user's choices; they must name existing columns.
    exclude_columns : tuple of str
        Columns never used as features; they must exist.
    max_categories : int
        Text-valued columns with more distinct values are excluded as id-like.
    max_missing : float
        Columns with a larger share of missing values are excluded (1.0: keep every column).
    source : str
        The file name, used in messages.

    Returns
    -------
    ColumnRoles

    Raises
    ------
    ConfigError
        If a named column does not exist.
    ValidationFailed
        If the frame has fewer than 2 rows, or no usable feature remains.
    """
    check_named_columns(
        frame.columns,
        text_column=text_column,
        id_column=id_column,
        exclude_columns=exclude_columns,
        source=source,
    )
    if len(frame) < 2:
        # With one row every column looks constant; say what is really wrong.
        raise ValidationFailed(
            f"{source}: only {len(frame)} data row; clustering needs at least 2 rows",
            hint="give a file with more rows",
        )

    excluded = {c: "excluded by the user" for c in exclude_columns}
    numeric: list[str] = []
    categorical: list[str] = []
    for column in frame.columns:
        if column in excluded or column in (text_column, id_column):
            continue
        kind, reason = _column_role(
            frame[column], max_missing=max_missing, max_categories=max_categories
        )
        if kind is None:
            excluded[column] = reason
        elif kind == "numeric":
            numeric.append(column)
        else:
            categorical.append(column)

    roles = ColumnRoles(
        id_column=id_column,
        text_column=text_column,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        excluded=excluded,
    )
    if not roles.features and not text_column:
        reasons = "; ".join(f"{c}: {r}" for c, r in excluded.items()) or "no columns"
        raise ValidationFailed(
            f"{source}: no usable feature column ({reasons})",
            hint="give --text-column for free text, or include numeric/categorical columns",
        )
    return roles


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


_CHECK_WORDS = {
    "finite": "is infinite",
    "unique_id": "repeats an earlier id",
    "not_nullable": "is empty",
}


def _describe(case: pd.Series) -> str:
    check = str(case["check"])
    column = case["column"]
    value = case["failure_case"]
    if isinstance(value, float) and value.is_integer():
        value = int(
            value
        )  # pandera gathers failure cases in one column: ids may come back as floats
    shown = (
        repr(value) if not isinstance(value, str) or len(value) < 40 else repr(value[:37] + "...")
    )
    if check.startswith("coerce_dtype"):
        return f"column {column}: {shown} is not a number"
    if check == "has_feature":
        return "every feature column and the text are empty"
    if check == "text_length":
        return f"column {column}: text too long ({len(str(value))} characters)"
    words = _CHECK_WORDS.get(check, f"fails {check}")
    return f"column {column}: {shown} {words}"


def _reasons(
    err: pa.errors.SchemaErrors, reasons: dict[int, list[str]], source: str = "input"
) -> None:
    cases = err.failure_cases
    row_level = cases[cases["index"].notna()]
    table_level = cases[cases["index"].isna()]
    for _, case in row_level.iterrows():
        if str(case["check"]).startswith("dtype("):
            continue  # the coercion failure of the same cell already says it
        text = _describe(case)
        bucket = reasons[int(case["index"])]
        if text not in bucket:
            bucket.append(text)
    if not table_level.empty:
        problems = "; ".join(
            f"{c['column']}: {c['check']} ({c['failure_case']})" for _, c in table_level.iterrows()
        )
        raise ValidationFailed(
            f"{source}: validation failed for whole columns, not rows: {problems}",
            hint="fix the column types or exclude the columns with --exclude-columns",
        ) from err


@dataclass(frozen=True)
class ValidationOutcome:
    """The result of validating the unchecked rows."""

    valid: pd.DataFrame
    quarantined_rows: list[int]
    reasons: dict[int, str]


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def coerce_numeric(frame: pd.DataFrame, roles: ColumnRoles) -> pd.DataFrame:
    """Return a copy with numeric columns as float (unparseable values become NaN).

    A number too large for a float (``1e400``) becomes infinite, as Python's ``float`` reads it,
    so that validation quarantines it instead of it turning silently into a gap.
    """
    out = frame.copy()
    for column in roles.numeric:
        if column in out:
            values = out[column]
            if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                values = values.astype("string").str.strip()
            parsed = pd.to_numeric(values, errors="coerce").astype(float)
            # pandas gives NaN where a number overflows; only an unparseable cell may be a gap
            retry = parsed.isna() & values.notna()
            if retry.any():
                parsed[retry] = values[retry].astype(object).map(_to_float).astype(float)
            out[column] = parsed
    for column in roles.categorical:
        if column in out:
            values = out[column]
            out[column] = values.where(values.isna(), values.astype(str)).astype(object)
    return out


def validate_records(
    frame: pd.DataFrame,
    roles: ColumnRoles,
    *,
    max_text_chars: int | None = 1_000_000,
    source: str = "input",
    allow_empty: bool = False,
) -> ValidationOutcome:
    """Validate unchecked rows lazily; split them into valid rows and quarantined rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Unchecked rows with a unique index (the row number).
    roles : ColumnRoles
        Column roles from :func:`infer_roles`.
    max_text_chars : int, optional
        Texts longer than this are quarantined (None: no limit).
    source : str
        The file name, used in messages.
    allow_empty : bool, default=False
        Return an outcome without valid rows instead of raising (one partition of a larger
        batch: the caller decides once every partition is checked).

    Returns
    -------
    ValidationOutcome
        ``valid`` holds the rows that passed, numeric columns as float and categoricals as text;
        ``reasons`` maps each quarantined row number to its reasons joined by ``"; "``.

    Raises
    ------
    ValidationFailed
        If no row passes (unless ``allow_empty``), or a failure concerns a whole column rather
        than rows.
    """
    if not frame.index.is_unique:
        raise ValidationFailed(
            f"{source}: input rows must have a unique index", hint="reset the index"
        )
    reasons: dict[int, list[str]] = defaultdict(list)
    try:
        _types_schema(roles).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        _reasons(err, reasons, source)
    checked = coerce_numeric(frame, roles)
    try:
        _checks_schema(roles, max_text_chars).validate(checked, lazy=True)
    except pa.errors.SchemaErrors as err:
        _reasons(err, reasons, source)

    bad = sorted(reasons)
    valid = checked.drop(index=bad)
    if valid.empty and not allow_empty:
        sample = "; ".join(f"row {r}: {', '.join(reasons[r])}" for r in bad[:3])
        raise ValidationFailed(
            f"{source}: every row failed validation ({len(bad)} rows; e.g. {sample})",
            hint="see the reasons; fix the file or the column options",
        )
    return ValidationOutcome(
        valid=valid,
        quarantined_rows=bad,
        reasons={r: "; ".join(reasons[r]) for r in bad},
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
