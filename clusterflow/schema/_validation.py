"""Lazy validation of unchecked rows: coercion, the two pandera passes and the quarantine reasons.

A pandera failure case becomes a reason in words (``column x: 'abc' is not a number``) attached
to its row; a failure of a whole column is raised instead, since no row is to blame.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from clusterflow.errors import ValidationFailed
from clusterflow.schema._roles import ColumnRoles
from clusterflow.schema._schemas import _checks_schema, _types_schema

_CHECK_WORDS = {
    "finite": "is infinite",
    "unique_id": "repeats an earlier id",
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
    if check == "not_nullable":
        # The cell is missing: NaN from a numeric column, None from a text one; say neither.
        return f"column {column} is empty"
    if check == "text_length":
        return f"column {column}: text too long ({len(str(value))} characters)"
    words = _CHECK_WORDS.get(check, f"fails {check}")
    return f"column {column}: {shown} {words}"


_CELL_REASON = re.compile(
    r"^column (?P<column>.+?): (?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+) "
    r"(?:is )?(?P<problem>not a number|infinite|repeats an earlier id|fails .+)$"
)


def reason_group(reason: str) -> tuple[str, str | None]:
    """Return the problem of one quarantine reason without its cell value, and the value.

    ``"column body_mass_g: '3450 g' is not a number"`` becomes ``("body_mass_g: not a number",
    "'3450 g'")``, so that rows failing the same way count together whatever their values; a
    reason that names no value (``"column sex is empty"``) is its own group, value None. The
    inverse of :func:`_describe`'s sentences.
    """
    found = _CELL_REASON.match(reason)
    if found:
        return f"{found['column']}: {found['problem']}", found["value"]
    if reason.startswith("column ") and ": text too long (" in reason:
        column, detail = reason.removeprefix("column ").split(": text too long ", 1)
        return f"{column}: text too long", detail.strip("()")
    if reason.startswith("column ") and reason.endswith(" is empty"):
        return f"{reason.removeprefix('column ').removesuffix(' is empty')}: empty", None
    return reason, None


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
            # As objects first: a nullable boolean or a categorical column cannot hold the text.
            values = out[column].astype(object)
            out[column] = values.where(values.isna(), values.astype(str))
    return out


def _run_both_passes(
    frame: pd.DataFrame, roles: ColumnRoles, max_text_chars: int | None, source: str
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Run the types pass on ``frame``, then the checks pass on its coerced copy.

    Returns
    -------
    checked : pandas.DataFrame
        ``frame`` as :func:`coerce_numeric` returns it.
    reasons : dict
        Row number to its reasons in words, for every row that failed either pass.

    Raises
    ------
    ValidationFailed
        If a failure concerns a whole column rather than rows.
    """
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
    return checked, reasons


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
    checked, reasons = _run_both_passes(frame, roles, max_text_chars, source)

    bad = sorted(reasons)
    valid = checked.drop(index=bad)
    if valid.empty and not allow_empty:
        sample = "; ".join(f"row {r}: {', '.join(reasons[r])}" for r in bad[:3])
        raise ValidationFailed(
            f"{source}: every row failed validation ({len(bad)} rows; e.g. {sample})",
            hint="fix those rows, or the column options that make them fail",
        )
    return ValidationOutcome(
        valid=valid,
        quarantined_rows=bad,
        reasons={r: "; ".join(reasons[r]) for r in bad},
    )
