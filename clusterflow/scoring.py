"""Batch scoring as a plain function: the one path that the score task and the CLI both use.

``clusterflow score`` calls :func:`score_table` directly (load the model, read the file, assign,
write): no flow engine, no Prefect import. The scoring flow's task calls the same function, so both
write the same file. :func:`score_frame` is the assignment itself (imputer, encoder, features,
nearest cluster), shared with monitoring and with the partitioned scoring on Dask.

:func:`find_registered_model` finds a registered model's saved folder by reading a local SQLite
registry directly, so scoring need not import MLflow (about as long as everything else scoring a
table costs, see the README's command-line section). It answers only where its answer is MLflow's
own; everywhere else it returns None and the caller asks MLflow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clusterflow.drift import DriftSample
from clusterflow.embed import Embedder
from clusterflow.errors import ConfigError, RegistryError, ValidationFailed
from clusterflow.io import write_csv
from clusterflow.model import ClusterModel
from clusterflow.model_uri import RegisteredURI, RunURI, parse_model_uri
from clusterflow.schema import CLUSTER_COLUMN, ROW_ID, ColumnRoles, check_id_name, coerce_numeric

__all__ = [
    "LocalModel",
    "assignment_ids",
    "find_registered_model",
    "score_frame",
    "score_id_column",
    "score_table",
]

KNOWN_SCHEMAS = frozenset({"dc11669786a5"})
"""Revisions (alembic) of MLflow's SQLite schema whose registry tables are read directly.

A store migrated to another revision is read through MLflow (slower, always right); the test
suite fails when the installed MLflow creates a revision not listed here, so a new one is added
only after a look at its registry tables."""

_PYFUNC_LOADER = "mlflow.pyfunc.loaders.code_model"
"""How :func:`clusterflow.model_registry.log_model_version` logs a model (models from code)."""


@dataclass(frozen=True)
class LocalModel:
    """A registered model version whose files are on this machine."""

    uri: str
    name: str
    version: str
    run_id: str | None
    folder: Path
    """The saved :class:`~clusterflow.model.ClusterModel` (the pyfunc's ``model`` artifact)."""

    def roles(self) -> ColumnRoles:
        """Return the model's column roles, read from its spec alone (nothing else is loaded)."""
        import json

        return ColumnRoles.from_dict(json.loads((self.folder / "spec.json").read_text())["roles"])

    def load(self):
        """Load the :class:`~clusterflow.model.ClusterModel` (what the pyfunc's loader does)."""
        from clusterflow.model import ClusterModel

        return ClusterModel.load(self.folder)


def tracking_uri(workspace: str | Path) -> str:
    """Return the tracking URI that :func:`clusterflow.model_registry.resolve_tracking_uri` gives.

    Here without importing MLflow and without creating the workspace (a store that does not
    exist yet holds no model).
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{Path(workspace).resolve() / 'mlflow.db'}"
    )


def find_registered_model(uri: str, workspace: str | Path) -> LocalModel | None:
    """Find the files of ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` without MLflow.

    Reads the registry tables of a SQLite tracking store (read-only) the way MLflow's registry
    does: the alias's version, not deleted, its ``storage_location`` (else ``source``), and in
    it the ``MLmodel`` file's ``model`` artifact.

    Returns None, and the caller asks MLflow, whenever the answer might not be MLflow's: a store
    that is not a local SQLite file or whose schema revision is not in :data:`KNOWN_SCHEMAS`,
    MLflow workspaces or a separate registry URI configured, ``runs:/`` URIs, the ``latest``
    alias, a version that is not ``READY``, files elsewhere than on this machine, a model not
    logged by clusterflow's pyfunc.

    Raises
    ------
    RegistryError
        When the registry (read as MLflow reads it) has no such model, alias or version.
    """
    import sqlite3

    try:
        found: RegisteredURI | RunURI | None = parse_model_uri(uri)
    except ConfigError:
        found = None  # MLflow says what is wrong with it
    tracking = tracking_uri(workspace)
    if (
        not isinstance(found, RegisteredURI)
        or (found.alias or "").lower() == "latest"
        or not (found.alias or (found.version or "").isdigit() or found.latest)
        or not tracking.startswith("sqlite:///")
        or "?" in tracking
        or any(
            os.environ.get(k)
            for k in ("MLFLOW_REGISTRY_URI", "MLFLOW_WORKSPACE", "MLFLOW_ENABLE_WORKSPACES")
        )
    ):
        return None
    database = Path(tracking.removeprefix("sqlite:///")).resolve()
    if not database.is_file():
        return None
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10) as db:
            row = _read_version(db, found.name, found.alias, found.version)
            there = _what_is_registered(db, found.name) if row is None else ""
    except sqlite3.Error:
        return None
    if row == "unknown schema":
        return None
    if row is None:
        raise RegistryError(
            f"no model {uri} in {tracking} ({there})",
            hint="name one of those with --model, or train a model first (clusterflow train "
            "DATA); check --workspace and MLFLOW_TRACKING_URI",
        )
    version, status, location, run_id = row
    folder = _pyfunc_model_folder(location) if status == "READY" else None
    if folder is None:
        return None
    return LocalModel(uri, found.name, str(version), run_id or None, folder)


def _read_version(db, name: str, alias: str | None, version: str | None):
    """Return (version, status, location, run_id), None when absent, or ``"unknown schema"``."""
    (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone() or ("",)
    if revision not in KNOWN_SCHEMAS:
        return "unknown schema"
    workspace = "default"  # MLflow's single-tenant workspace (other set-ups return None above)
    if not db.execute(
        "SELECT 1 FROM registered_models WHERE name = ? AND workspace = ?", (name, workspace)
    ).fetchone():
        return None
    if alias is not None:
        aliased = db.execute(
            "SELECT version FROM registered_model_aliases "
            "WHERE name = ? AND alias = ? AND workspace = ?",
            (name, alias, workspace),
        ).fetchone()
        if aliased is None:
            return None
        version = str(aliased[0])
    elif str(version).lower() == "latest":  # as MLflow reads models:/<name>/latest
        (version,) = db.execute(
            "SELECT MAX(version) FROM model_versions WHERE name = ? AND workspace = ? "
            "AND current_stage != 'Deleted_Internal'",
            (name, workspace),
        ).fetchone()
        if version is None:
            return None
    return db.execute(
        "SELECT version, status, COALESCE(NULLIF(storage_location, ''), source), run_id "
        "FROM model_versions WHERE name = ? AND version = ? AND workspace = ? "
        "AND current_stage != 'Deleted_Internal'",
        (name, int(str(version)), workspace),
    ).fetchone()


def _what_is_registered(db, name: str) -> str:
    """Say in words which versions and aliases ``name`` has, or which models are registered."""
    names = [r[0] for r in db.execute("SELECT name FROM registered_models ORDER BY name")]
    if name not in names:
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        return f"registered: {', '.join(names[:10])}{more}" if names else "no model is registered"
    versions = [
        str(r[0])
        for r in db.execute(
            "SELECT version FROM model_versions WHERE name = ? "
            "AND current_stage != 'Deleted_Internal' ORDER BY version",
            (name,),
        )
    ]
    aliases = [
        f"@{r[0]}"
        for r in db.execute(
            "SELECT alias FROM registered_model_aliases WHERE name = ? ORDER BY alias", (name,)
        )
    ]
    return f"{name} has versions {', '.join(versions) or 'none'}" + (
        f" and aliases {', '.join(aliases)}" if aliases else ""
    )


def _pyfunc_model_folder(location: str | None) -> Path | None:
    """Return the ClusterModel folder inside a local pyfunc model directory, else None."""
    from urllib.parse import unquote, urlparse

    import yaml

    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        root = Path(unquote(parsed.path))
    elif not parsed.scheme and Path(location).is_absolute():
        root = Path(location)
    else:
        return None  # models:/<model id>, mlflow-artifacts:, s3:, ...: MLflow resolves these
    try:
        spec = yaml.safe_load((root / "MLmodel").read_text())
        pyfunc = spec["flavors"]["python_function"]
        relative = pyfunc["artifacts"]["model"]["path"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    if pyfunc.get("loader_module") != _PYFUNC_LOADER:
        return None
    folder = (root / relative).resolve()
    if not folder.is_relative_to(root.resolve()) or not (folder / "spec.json").is_file():
        return None
    return folder


def score_table(
    model,
    frame: pd.DataFrame,
    *,
    out: str | Path,
    model_uri: str,
    workspace: str | Path,
    id_column: str | None = None,
    details: bool = False,
    source: str = "batch",
) -> dict:
    """Assign every row of ``frame`` with ``model`` and write ``<id>,cluster`` to ``out``.

    Goes through the unwrapped :class:`~clusterflow.model.ClusterModel`, so integer columns of
    the batch are accepted as they are (the served pyfunc's signature declares numeric inputs as
    double). The embedder (and with it torch) is built only when the model has a text column.

    Returns
    -------
    dict
        ``rows``, ``out``, ``model_uri``, ``novel`` (rows farther from their centre than the
        training rows were), ``cluster_sizes`` and ``unreadable`` (see
        :func:`unreadable_numbers`).
    """
    id_name, ids = assignment_ids(model, frame, id_column)  # a wrong id fails before any work
    check_detail_names(id_name, details)
    unreadable = unreadable_numbers(model, frame)
    check_readable_columns([unreadable], source)
    embedder = (
        model.embedder.build(Path(workspace) / "embeddings.sqlite") if model.embedder else None
    )
    sample, assigned = score_frame(model, frame, embedder=embedder)
    table = pd.DataFrame({id_name: ids, CLUSTER_COLUMN: assigned["cluster"].to_numpy()})
    for column in DETAIL_COLUMNS if details else ():
        table[column] = assigned[column].to_numpy()
    write_csv(table, out)
    sizes = table["cluster"].value_counts().sort_index()
    return {
        "rows": len(table),
        "out": str(out),
        "model_uri": model_uri,
        "novel": int(assigned["novel"].sum()),
        "cluster_sizes": {str(k): int(v) for k, v in sizes.items()},
        "unreadable": {"rows": unreadable["rows"], "example": unreadable["example"]},
        "featureless": featureless_rows(model, frame),
        "unseen_categories": unseen_categories(model, frame, sample.table),
        "repeated_ids": repeated_ids(ids) if id_name != ROW_ID else {"rows": 0, "example": None},
        "id_fallback": model.roles.id_column if id_name == ROW_ID else None,
    }


SCORE_NOTES = {
    "unreadable": "had a number that could not be read (first: {example}); those cells were "
    "filled as gaps (train quarantines such rows)",
    "featureless": "had no value in any column the model reads (first: {example}); assigned "
    "from typical values alone (train quarantines such rows)",
    "unseen_categories": "had a category the model never saw (first: {example}); placed by "
    "their other columns (retrain to learn it)",
    "repeated_ids": "had the id of an earlier row (first: {example}); the output cannot be "
    "joined back by id (train quarantines such rows)",
}
"""What score says about rows it assigned although training would not have taken them as they
are: keys of :func:`score_table`'s result, each ``{"rows", "example"}``."""


def count_rows(n: int | str) -> str:
    """Return ``n`` rows in words: ``1 row``, ``3 rows``."""
    return "1 row" if n == 1 else f"{n} rows"


def score_notes(result: dict) -> list[str]:
    """Return the lines under a score's summary: what was odd about the rows it assigned."""
    lines = [
        f"{count_rows(found['rows'])} " + template.format(example=found["example"])
        for key, template in SCORE_NOTES.items()
        if (found := result.get(key)) and found["rows"]
    ]
    if result.get("id_fallback"):
        lines.append(
            f"the model's id column {result['id_fallback']!r} is not in the file: the rows are "
            "named by their number (pass --id-column to name another)"
        )
    return lines


def unseen_categories(model: ClusterModel, frame: pd.DataFrame, imputed: pd.DataFrame) -> dict:
    """Count the rows with a category the model never saw (training would have learnt it).

    Such a cell enters the features as none of the known categories (all zeros), so the row is
    placed by its other columns. Only written cells count (a gap is filled with a known one).
    Returns ``rows`` and ``example`` (the first such cell, in words, or None).
    """
    encoder = getattr(model.features, "encoder_", None)
    if encoder is None:
        return {"rows": 0, "example": None}
    unseen = np.zeros(len(frame), dtype=bool)
    first: tuple[int, str] | None = None
    for column, known in zip(model.features.categorical_columns, encoder.categories_, strict=True):
        if column not in frame.columns:
            continue
        values = imputed[column].astype(str).to_numpy()
        new = frame[column].notna().to_numpy() & ~np.isin(values, known)
        unseen |= new
        if new.any():
            at = int(np.flatnonzero(new)[0])
            if first is None or at < first[0]:
                first = (at, f"row {frame.index[at]}: {column} {frame[column].iat[at]!r}")
    return {"rows": int(unseen.sum()), "example": first[1] if first else None}


def repeated_ids(ids: np.ndarray) -> dict:
    """Count the rows whose id an earlier row already has (``train`` quarantines them).

    Returns ``rows`` and ``example`` (the first repeat, in words, or None).
    """
    repeat = pd.Series(ids).duplicated().to_numpy() & pd.notna(ids)
    at = np.flatnonzero(repeat)
    example = f"row {at[0]}: {ids[at[0]]!r}" if len(at) else None
    return {"rows": len(at), "example": example}


def featureless_rows(model: ClusterModel, frame: pd.DataFrame) -> dict:
    """Count the rows with no value in any column the model reads (training quarantines them).

    Scoring assigns them all the same, from the imputer's typical values alone. Returns ``rows``
    and ``example`` (the first such row, in words, or None).
    """
    read = [c for c in (*model.roles.features, model.roles.text_column) if c and c in frame.columns]
    empty = np.ones(len(frame), dtype=bool)
    for column in read:
        if not empty.any():
            break
        values = frame[column]
        blank = values.isna().to_numpy()
        if not pd.api.types.is_numeric_dtype(values):  # text: a blank string is empty too
            blank |= values.astype(str).str.strip().eq("").to_numpy()
        empty &= blank
    rows = np.flatnonzero(empty)
    return {
        "rows": len(rows),
        "example": f"row {frame.index[rows[0]]}" if len(rows) else None,
    }


def unreadable_numbers(model: ClusterModel, frame: pd.DataFrame) -> dict:
    """Count the rows whose numeric cells hold something validation would not read as a number.

    Training quarantines such a row (``'abc'``, a blank ``' '``, an infinity; ``'nan'`` is a
    gap, as there); scoring assigns every row, with those cells filled as gaps, and says how
    many there were. Only the cells that did not parse to a finite number are looked at again.
    Returns ``rows`` (the count), ``example`` (the first such row's cell, in words, or None)
    and ``columns``: per numeric column, its ``written`` cells (neither missing nor blank), how
    many of those ``failed`` and the first as ``example`` (for :func:`check_readable_columns`,
    which adds up the partitions of a batch).
    """
    numeric = [c for c in model.roles.numeric if c in frame.columns]
    bad = np.zeros(len(frame), dtype=bool)
    first: tuple[int, str] | None = None
    columns: dict[str, dict] = {}
    for column in numeric:
        raw = frame[column]
        if pd.api.types.is_float_dtype(raw) or pd.api.types.is_integer_dtype(raw):
            odd = np.flatnonzero(np.isinf(raw.to_numpy(dtype=float, na_value=np.nan)))
            blank = np.zeros(len(raw), dtype=bool)
        else:
            parsed = coerce_numeric(frame[[column]], model.roles)[column].to_numpy(dtype=float)
            odd = np.flatnonzero(~np.isfinite(parsed) & raw.notna().to_numpy())
            blank = raw.str.strip().eq("").fillna(False).to_numpy(dtype=bool)  # text cells only
        failed = [int(i) for i in odd if _not_a_number(raw.iat[i])]
        written = [i for i in failed if not blank[i]]
        columns[column] = {
            "written": int(raw.notna().sum()) - int(blank.sum()),
            "failed": len(written),
            "example": f"row {frame.index[written[0]]}: {raw.iat[written[0]]!r}"
            if written
            else None,
        }
        if failed and (first is None or failed[0] < first[0]):
            value = raw.iat[failed[0]]
            shown = repr(value) if isinstance(value, str) else str(value)  # 'abc', or inf
            first = (failed[0], f"row {frame.index[failed[0]]}, column {column}: {shown}")
        bad[failed] = True
    return {
        "rows": int(bad.sum()),
        "example": None if first is None else first[1],
        "columns": columns,
    }


def check_readable_columns(counts: list[dict], source: str) -> None:
    """Refuse a batch in which no written value of a numeric column reads as a number.

    ``counts`` are :func:`unreadable_numbers` results: the whole batch's, or its partitions'.
    A few unreadable cells are filled as gaps and counted; a column with no number at all has
    changed its format (``3,750``, ``65 W``), and filling it all would score made-up values.

    Raises
    ------
    ValidationFailed
        Naming the file, the column and its first value.
    """
    for column in counts[0]["columns"] if counts else ():
        per_part = [c["columns"][column] for c in counts]
        written = sum(p["written"] for p in per_part)
        if written and sum(p["failed"] for p in per_part) == written:
            example = next(p["example"] for p in per_part if p["example"])
            raise ValidationFailed(
                f"{source}: column {column}: no value reads as a number (first: {example})",
                hint="write the column as plain numbers, as in the training data (no thousands "
                "separators or units)",
            )


def _not_a_number(value: object) -> bool:
    """Whether validation quarantines this cell: it does not read as a float, or is infinite."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    return bool(np.isinf(number))


def score_frame(
    model: ClusterModel, frame: pd.DataFrame, embedder: Embedder | None = None
) -> tuple[DriftSample, pd.DataFrame]:
    """Run ``frame`` through the model: the batch's drift sample and its assignments."""
    model.check_columns(frame)
    coerced = model.coerce(frame)  # once: its gaps are the drift sample's blank cells too
    imputed, embeddings, X = model.feature_matrix(frame, embedder=embedder, coerced=coerced)
    labels, distance = model.assign(X)
    novel = distance > model.novelty_threshold
    sample = DriftSample(
        table=imputed.reset_index(drop=True),
        embeddings=embeddings,
        clusters=labels,
        distances=distance,
        novel=novel,
        missing=coerced.isna(),
    )
    assigned = pd.DataFrame(
        {"cluster": labels, "distance": distance, "novel": novel}, index=frame.index
    )
    return sample, assigned


def score_id_column(model: ClusterModel, id_column: str | None) -> str | None:
    """Return the column whose values name the scored rows: ``id_column``, else the model's.

    Read it as text (:func:`clusterflow.io.read_table`'s ``text_columns``) so that the output
    has the ids as written. None: the rows are named by their number.

    Raises
    ------
    ConfigError
        If that column is named ``cluster``, like the output's cluster column (a model
        trained before such an id was refused may have it).
    """
    if id_column:
        check_id_name(id_column)
        return id_column
    column = model.roles.id_column
    if column == CLUSTER_COLUMN:
        raise ConfigError(
            f"the model's id column {column!r} has the name of the output's cluster column "
            f"(<id>,{CLUSTER_COLUMN}), so the ids would be lost",
            hint="pass --id-column with another column of the file, or rename the column in "
            "the file and train again",
        )
    return column


DETAIL_COLUMNS = ("distance", "novel")
"""The columns ``--details`` adds to score's output after ``<id>,cluster``."""


def check_detail_names(id_name: str | None, details: bool) -> None:
    """Refuse an id column that ``--details`` would overwrite (named ``distance`` or ``novel``).

    Raises
    ------
    ConfigError
        Naming the column and the way out.
    """
    if details and id_name in DETAIL_COLUMNS:
        raise ConfigError(
            f"the id column {id_name!r} has the name of a column --details adds "
            f"({', '.join(DETAIL_COLUMNS)}), so the ids would be lost",
            hint="score without --details, or rename the id column in the file",
        )


def assignment_ids(
    model: ClusterModel, frame: pd.DataFrame, id_column: str | None
) -> tuple[str, np.ndarray]:
    """Return the id column name and values for score outputs (default: the row number)."""
    column = score_id_column(model, id_column)
    if column and column in frame.columns:
        return column, frame[column].to_numpy()
    if id_column:
        raise ValidationFailed(
            f"--id-column {id_column!r} is not a column of the input",
            hint="name an existing column or omit the option",
        )
    return ROW_ID, np.arange(len(frame))
