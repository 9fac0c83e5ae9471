"""Role inference: which input columns are the id, the text, numeric or categorical features.

The user's options are checked first (named columns must exist); every other column is judged by
its values, and a column that cannot serve as a feature is excluded with the reason, in words.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from clusterflow.errors import ConfigError, ValidationFailed
from clusterflow.schema._roles import CLUSTER_COLUMN, ColumnRoles

_NUMERIC_SHARE = 0.9
"""A text column whose non-empty values parse as numbers at least this often is numeric."""


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
    time_column: str | None = None,
    source: str = "input",
) -> None:
    """Raise ConfigError if a column named in the options is not among ``columns``.

    An id column named like the outputs' cluster column is refused too (see
    :func:`check_id_name`).
    """
    named = ((text_column, "--text-column"), (id_column, "--id-column"))
    for column, option in (*named, (time_column, "--time-column")):
        if column is not None:
            _require_column(columns, column, option, source)
    for column in exclude_columns:
        _require_column(columns, column, "--exclude-columns", source)
    check_id_name(id_column, source)


def check_id_name(id_column: str | None, source: str = "input") -> None:
    """Raise ConfigError if the id column is named ``cluster``.

    ``assignments.csv`` and score's output are ``<id>,cluster``: with the id named ``cluster``
    they would hold one ``cluster`` column, the ids lost.
    """
    if id_column == CLUSTER_COLUMN:
        raise ConfigError(
            f"{source}: --id-column {id_column!r} has the name of the outputs' cluster column "
            f"(<id>,{CLUSTER_COLUMN}), so the ids would be lost",
            hint="rename the column in the file (e.g. to cluster_id) and pass the new name to "
            "--id-column",
        )


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


def _not_numbers(non_null: pd.Series) -> str:
    """Say why a column of mostly numbers is not numeric ("" unless at least half parse).

    A numeric column needs :data:`_NUMERIC_SHARE` of its values to be numbers; a missing-value
    marker such as ``?`` or ``-`` in more cells than that leaves would otherwise be reported as
    an id or free text.
    """
    as_text = non_null.astype(str).str.strip()
    failed = pd.to_numeric(as_text, errors="coerce").isna()
    if failed.mean() >= 0.5:
        return ""
    examples = ", ".join(repr(v) for v in as_text[failed].value_counts().index[:3])
    return (
        f"mostly numbers, but {failed.mean():.0%} of its values are not (e.g. {examples}); a "
        f"numeric column needs {_NUMERIC_SHARE:.0%}: blank out those values (they become gaps "
        "to impute) to use it"
    )


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
        return None, _not_numbers(non_null) or (
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
    time_column: str | None = None,
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
    time_column : str, optional
        The column that orders the gate's held-out rows; never a feature, and it must exist.
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
        time_column=time_column,
        source=source,
    )
    _require_two_rows(frame, source)
    roles = _assign_roles(
        frame,
        text_column=text_column,
        id_column=id_column,
        exclude_columns=exclude_columns,
        time_column=time_column,
        max_categories=max_categories,
        max_missing=max_missing,
    )
    _require_a_feature(roles, source)
    return roles


def _require_two_rows(frame: pd.DataFrame, source: str) -> None:
    """Raise ValidationFailed if ``frame`` has fewer than the 2 rows clustering needs."""
    if len(frame) < 2:
        # With one row every column looks constant; say what is really wrong.
        raise ValidationFailed(
            f"{source}: only {len(frame)} data row; clustering needs at least 2 rows",
            hint="give a file with more rows",
        )


def _assign_roles(
    frame: pd.DataFrame,
    *,
    text_column: str | None,
    id_column: str | None,
    exclude_columns: tuple[str, ...],
    time_column: str | None,
    max_categories: int,
    max_missing: float,
) -> ColumnRoles:
    """Return the roles: the named columns as given, every other column judged by its values.

    Parameters are those of :func:`infer_roles`; the named columns are known to exist.
    """
    excluded = {c: "excluded by the user" for c in exclude_columns}
    if time_column is not None:
        excluded[time_column] = "the --time-column (orders the gate's held-out rows)"
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

    return ColumnRoles(
        id_column=id_column,
        text_column=text_column,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        excluded=excluded,
    )


def _require_a_feature(roles: ColumnRoles, source: str) -> None:
    """Raise ValidationFailed, with every exclusion's reason, if nothing is left to cluster on."""
    if not roles.features and not roles.text_column:
        reasons = "; ".join(f"{c}: {r}" for c, r in roles.excluded.items()) or "no columns"
        raise ValidationFailed(
            f"{source}: no usable feature column ({reasons})",
            hint="give --text-column for free text, or include numeric/categorical columns",
        )
