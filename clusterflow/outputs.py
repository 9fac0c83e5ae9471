"""The contract outputs of a training run: assignments.csv, quarantine.csv, summary.json."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.errors import ValidationFailed
from clusterflow.io import read_raw_rows, write_csv, write_json
from clusterflow.registration import apply_cluster_map
from clusterflow.schema import CLUSTER_COLUMN
from clusterflow.stages import Embedded, Imputed, Snapshot, Swept, Validated

logger = logging.getLogger(__name__)


def imputer_text(method: str | None, categorical_method: str | None = None) -> str:
    """Say which imputer filled the gaps: the method, and the categoricals' when it differs."""
    if categorical_method in (None, method):
        return str(method)
    return f"{method}; categoricals {categorical_method}"


def _link_or_copy(src: str | Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def quarantined_rows(snapshot: Snapshot, validated: Validated) -> pd.DataFrame:
    """Return the quarantined rows exactly as they are in the input, plus their ``reason``."""
    quarantine = pd.read_parquet(validated.quarantine_path)
    rows = quarantine["row"].astype(int).tolist()
    if not rows:
        return pd.DataFrame(columns=[*snapshot.columns, "reason"])
    id_column = validated.column_roles.id_column
    return rows_as_written(
        snapshot.source,
        rows,
        quarantine["reason"].tolist(),
        text_columns=(id_column,) if id_column else (),
    )


def rows_as_written(
    source: str | Path, rows: list[int], reasons: list[str], *, text_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Return the input's rows ``rows`` as its file has them (``3`` not ``3.0``), plus ``reason``.

    Training's quarantine.csv and monitoring's both go through it. ``text_columns`` (the id
    column) are read as text from Parquet and JSON Lines too (a CSV's rows are all text).
    """
    raw = read_raw_rows(source, rows, text_columns=text_columns).copy()
    raw["reason"] = list(reasons)
    return raw


def write_run_outputs(
    out_dir: str | Path,
    *,
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    swept: Swept,
    registration: dict | None,
    run_id: str,
    stages: dict | None = None,
) -> dict:
    """Write the contract files and the stage artifacts into ``out_dir``; return the summary.

    Raises
    ------
    ValidationFailed
        If the rows do not add up (a bug: every row must be clustered or quarantined).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    assignments = _write_assignments(out, validated, swept, registration)
    quarantined = quarantined_rows(snapshot, validated)
    write_csv(quarantined, out / "quarantine.csv")
    _check_row_accounting(snapshot, assignments, quarantined)
    artifacts = _link_artifacts(out / "artifacts", imputed, swept)
    summary = _run_summary(
        snapshot, validated, imputed, embedded, swept, assignments, quarantined, run_id
    )
    summary["outputs"] = {
        "assignments": str(out / "assignments.csv"),
        "quarantine": str(out / "quarantine.csv"),
        "artifacts": str(artifacts),
    }
    if registration:
        summary.update(_registration_summary(registration))
    if registration and registration.get("gate"):
        write_json(registration["gate"], out / "gate.json")
        summary["outputs"]["gate"] = str(out / "gate.json")
    summary["clusters"] = _cluster_labels(swept, (registration or {}).get("cluster_map") or {})
    summary["stages"] = stages or {}
    write_json(summary, out / "summary.json")
    return summary


def _write_assignments(
    out: Path, validated: Validated, swept: Swept, registration: dict | None
) -> pd.DataFrame:
    """Write ``assignments.csv`` (each valid row's id and cluster) and return it."""
    labels = np.load(swept.labels_path)
    if registration:
        # Published ids: matched to the previous champion's clusters so an id keeps its meaning.
        labels = apply_cluster_map(labels, registration.get("cluster_map", {}))
    ids = _row_ids(validated)
    # validation refused an id column named "cluster" (schema.check_id_name): two columns here
    roles = validated.column_roles
    assignments = pd.DataFrame({roles.id_name: ids, CLUSTER_COLUMN: labels.astype(int)})
    write_csv(assignments, out / "assignments.csv")
    return assignments


def _row_ids(validated: Validated) -> np.ndarray:
    """Return the valid rows' ids: the id column, or the row positions in the input."""
    roles = validated.column_roles
    if roles.id_column:
        ids = pd.read_parquet(validated.valid_path, columns=[roles.id_column])[roles.id_column]
        return ids.to_numpy()
    return pd.read_parquet(validated.valid_path, columns=[]).index.to_numpy()


def _check_row_accounting(
    snapshot: Snapshot, assignments: pd.DataFrame, quarantined: pd.DataFrame
) -> None:
    """Raise unless every input row is either clustered or quarantined."""
    if len(assignments) + len(quarantined) != snapshot.n_rows:
        raise ValidationFailed(
            f"row accounting broken: {snapshot.n_rows} in, {len(assignments)} clustered, "
            f"{len(quarantined)} quarantined",
            hint="report this as a bug",
        )


def _link_artifacts(artifacts: Path, imputed: Imputed, swept: Swept) -> Path:
    """Link (or copy) the sweep's table, plots, cards and the imputation plot into ``artifacts``."""
    for src in [swept.results_path, *swept.plots.values(), swept.cards_path, imputed.plot_path]:
        if src and Path(src).exists():
            _link_or_copy(src, artifacts / Path(src).name)
    return artifacts


def _run_summary(
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    swept: Swept,
    assignments: pd.DataFrame,
    quarantined: pd.DataFrame,
    run_id: str,
) -> dict[str, Any]:
    """Return the summary before registration: data, rows, the chosen clustering, columns."""
    roles = validated.column_roles
    counts = assignments["cluster"].value_counts().sort_index()
    handles: dict[str, Snapshot | Validated | Imputed | Embedded | Swept | None] = {
        "ingest": snapshot,
        "validate": validated,
        "impute": imputed,
        "embed": embedded,
        "sweep": swept,
    }
    return {
        "run_id": run_id,
        "data": snapshot.source,
        "fingerprint": snapshot.fingerprint,
        "rows_in": snapshot.n_rows,
        "rows_clustered": len(assignments),
        "rows_quarantined": len(quarantined),
        "rows_imputed": _rows_with_gaps(validated) if imputed.missing_cells else 0,
        "algorithm": swept.algorithm,
        "k": swept.k,
        "metrics": swept.metrics,
        "selection_rule": swept.rule,
        "metrics_disagree": swept.disagreement,
        "runner_ups": swept.runner_ups,
        "cluster_sizes": {str(k): int(v) for k, v in counts.items()},
        "imputer": imputed.method,
        "categorical_imputer": imputed.categorical_method,
        "columns": {
            "numeric": list(roles.numeric),
            "categorical": list(roles.categorical),
            "text": roles.text_column,
            "id": roles.id_column,
            "excluded": roles.excluded,
        },
        "embedding": None
        if embedded is None
        else {"model": embedded.model_id, "texts": embedded.n_texts, "distinct": embedded.n_unique},
        "stages_reused": [name for name, h in handles.items() if h is not None and h.reused],
        "model_uri": None,
        "model_version": None,
        "promoted": False,
    }


def _registration_summary(registration: dict) -> dict[str, Any]:
    """Return where the model went and the gate's verdict, as summary.json states them."""
    return {
        "model_uri": registration["model_uri"],
        "model_version": registration["model_version"],
        "promoted": registration["promoted"],
        "promotion_reason": registration["reason"],
        "mlflow_run_id": registration["run_id"],
        "tracking_uri": registration["tracking_uri"],
        "gate": _gate_summary(registration),
        "cluster_map": {str(k): v for k, v in (registration.get("cluster_map") or {}).items()},
        "matched_share": registration.get("matched_share"),
    }


def _gate_summary(registration: dict) -> dict:
    """Return the gate's evidence as summary.json states it (gate.json has the whole record)."""
    record = registration.get("gate") or {}
    return {
        "outcome": record.get("outcome"),
        "metric": registration.get("gate_metric"),
        "challenger_score": registration.get("challenger_score"),
        "champion_score": registration.get("champion_score"),
        "difference": record.get("difference"),
        "interval": record.get("interval"),
        "agreement_ari": record.get("agreement_ari"),
        "rows": record.get("rows"),
        "resamples": record.get("resamples"),
        "previous_champion": registration.get("previous_champion"),
    }


def _cluster_labels(swept: Swept, cluster_map: dict) -> list[dict]:
    """Each cluster's published id, size, short label and note, from the sweep's cluster cards."""
    if not swept.cards_path:
        return []
    path = Path(swept.cards_path).with_name("cards.json")
    if not path.exists():
        return []
    mapping = {int(k): int(v) for k, v in cluster_map.items()}
    out = []
    for card in json.loads(path.read_text()):
        cluster = int(card["cluster"])
        out.append(
            {
                "cluster": mapping.get(cluster, cluster),
                "size": int(card["size"]),
                "label": card.get("label") or "",
                "terms": list(card.get("terms", []))[:8],
                "note": card.get("note"),
            }
        )
    return sorted(out, key=lambda c: (c["cluster"] < 0, c["cluster"]))


def _rows_with_gaps(validated: Validated) -> int:
    roles = validated.column_roles
    if not roles.features:
        return 0
    table = pd.read_parquet(validated.valid_path, columns=list(roles.features))
    return int(table.isna().any(axis=1).sum())
