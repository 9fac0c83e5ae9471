"""The first two stages: ingest the input file, then validate its rows and quarantine the rest."""

from __future__ import annotations

import logging
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from clusterflow.config import ImputeMethod, TrainConfig
from clusterflow.errors import ValidationFailed
from clusterflow.io import fingerprint, read_table
from clusterflow.schema import ColumnRoles, infer_roles, validate_records
from clusterflow.stages.common import sanitise_for_parquet
from clusterflow.stages.handles import Snapshot, Validated
from clusterflow.store import StageStore

logger = logging.getLogger(__name__)


def ingest(data: str | Path, store: StageStore, *, text_columns: Collection[str] = ()) -> Snapshot:
    """Read the input file into a typed snapshot stored under its content hash.

    Parameters
    ----------
    data : str or Path
        The input file.
    store : StageStore
        Where the snapshot is kept.
    text_columns : collection of str, optional
        Columns read as text, as written (the run's id column: see
        :func:`clusterflow.io.read_table`). Part of the snapshot's key: a snapshot read
        without them holds those columns as typed by inference.

    Raises
    ------
    InputError
        If the file cannot be read as a table (see :func:`clusterflow.io.read_table`).
    """
    path = Path(data)
    # raises the clear errors before anything is hashed or stored
    frame = read_table(path, text_columns=text_columns)
    digest = fingerprint(path)
    key = store.key("ingest", digest, sorted(set(text_columns)))
    target = store.path("ingest", key) / "rows.parquet"
    # Not store.cached: the handle is rebuilt from the frame (read anyway for its errors), so
    # the stage keeps no meta.json.
    reused = store.done("ingest", key)
    if not reused:
        with store.writing("ingest", key) as tmp:
            sanitise_for_parquet(frame).to_parquet(tmp / "rows.parquet", index=True)
    return Snapshot(
        source=str(path),
        fingerprint=digest,
        path=str(target),
        n_rows=len(frame),
        columns=tuple(frame.columns),
        reused=reused,
    )


def validate(snapshot: Snapshot, config: TrainConfig, store: StageStore) -> Validated:
    """Infer column roles and validate lazily; quarantine failing rows with their reasons.

    With ``impute.method == "drop"`` rows with gaps in a feature are quarantined too (the user
    asked for it), each with the columns that were empty.
    """
    key = store.key("validate", snapshot.fingerprint, _validate_settings(config))
    validated = Validated(
        **store.cached("validate", key, partial(_validate_into, snapshot, config))
    )
    if not validated.reused:
        logger.info(
            "validated %d rows: %d valid, %d quarantined",
            snapshot.n_rows,
            validated.n_valid,
            validated.n_quarantined,
        )
    return validated


def _validate_into(
    snapshot: Snapshot, config: TrainConfig, tmp: Path, folder: Path
) -> dict[str, Any]:
    """Validate the snapshot's rows into ``tmp``: the valid ones, the quarantined ones and why."""
    frame = pd.read_parquet(snapshot.path)
    source = Path(snapshot.source).name
    roles = roles_for(frame, config, source)
    outcome = validate_records(frame, roles, max_text_chars=1_000_000, source=source)
    valid, reasons = outcome.valid, dict(outcome.reasons)
    if config.impute.method == ImputeMethod.drop and roles.features:
        valid, reasons = _quarantine_incomplete(valid, reasons, roles, source)
    quarantine = pd.DataFrame(
        {"row": list(reasons.keys()), "reason": list(reasons.values())}
    ).sort_values("row")
    sanitise_for_parquet(valid).to_parquet(tmp / "valid.parquet", index=True)
    quarantine.to_parquet(tmp / "quarantine.parquet", index=False)
    return {
        "valid_path": str(folder / "valid.parquet"),
        "quarantine_path": str(folder / "quarantine.parquet"),
        "roles": roles.to_dict(),
        "n_valid": len(valid),
        "n_quarantined": len(quarantine),
    }


def _validate_settings(config: TrainConfig) -> dict:
    """Return the settings that go into the validate stage's key."""
    return {
        "text": config.text_column,
        "id": config.id_column,
        "exclude": config.exclude_columns,
        "time": config.time_column,
        "max_categories": config.features.max_categories,
        "max_missing": config.features.max_missing,
        "drop": config.impute.method == "drop",
        "max_chars": config.embed.max_chars,
    }


def roles_for(frame: pd.DataFrame, config: TrainConfig, source: str) -> ColumnRoles:
    """Infer the column roles by the run's settings; a text column that holds no text is an error.

    No text: empty in every row, or a number in every row that is not empty (``--text-column``
    naming a measurement would embed ``"3750.0"`` as a sentence, at the text block's weight).
    The in-process validation passes the whole table, the Dask driver its sample of rows.
    """
    roles = infer_roles(
        frame,
        text_column=config.text_column,
        id_column=config.id_column,
        exclude_columns=config.exclude_columns,
        time_column=config.time_column,
        max_categories=config.features.max_categories,
        max_missing=config.features.max_missing,
        source=source,
    )
    if roles.text_column:
        texts = frame[roles.text_column].dropna().astype(str).str.strip()
        texts = texts[texts != ""]
        if texts.empty:
            raise ValidationFailed(
                f"{source}: the text column {roles.text_column!r} is empty in every row",
                hint="choose another --text-column or omit it for tabular data",
            )
        if pd.to_numeric(texts, errors="coerce").notna().all():
            raise ValidationFailed(
                f"{source}: the text column {roles.text_column!r} holds a number in every row, "
                "not text",
                hint="choose the column of free text as --text-column, or omit it for tabular data",
            )
    return roles


def _quarantine_incomplete(
    valid: pd.DataFrame, reasons: dict[int, str], roles: ColumnRoles, source: str
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Move the valid rows with a gap in a feature to the quarantine (``impute=drop``).

    Return the complete rows and the reasons with one added per moved row, naming its empty
    columns.
    """
    gaps = valid[list(roles.features)].isna()
    incomplete = gaps.any(axis=1)
    reasons = dict(reasons)
    for row in valid.index[incomplete]:
        empty = ", ".join(gaps.columns[gaps.loc[row]])
        reasons[int(row)] = f"gaps in {empty} (impute=drop was asked)"
    complete = valid.loc[~incomplete]
    if complete.empty:
        raise ValidationFailed(
            f"{source}: every row has a gap and impute=drop was asked",
            hint="use an imputer (the default 'auto') instead of dropping rows",
        )
    return complete, reasons
