"""Drift of a new batch through the champion's own path (no Prefect here).

Scoring itself (:func:`clusterflow.scoring.score_frame`, :func:`clusterflow.scoring.assignment_ids`)
lives in :mod:`clusterflow.scoring`; both names are re-exported here for older imports.

A batch goes through the same steps as the training rows did before they reached the
clusterer: the champion's schema check (:func:`clusterflow.schema.validate_records` with the
champion's column roles), its imputer, its embedder and its feature builder. Then
:func:`clusterflow.drift.compare` sets it against the reference sample the champion carries
(a seeded sample of its own training rows, imputed, embedded and assigned at training time).

Rows of the batch that fail validation are *quarantined, counted and reported*, not compared:
an unreadable number would otherwise become a gap, the imputer would fill it with a typical
value, and the very rows that changed would make the batch look more like the reference.
``drift.json`` carries ``rows`` (``in``, ``compared``, ``quarantined``, their share and the most
common reasons) and the monitor writes the quarantined rows, unchanged plus a ``reason`` column,
to ``quarantine.csv`` beside the report. Their share is itself tested: when it exceeds the share
of the training file's rows that failed (recorded in the model) by more than
``thresholds.quarantine_share``, one-sided binomial test at ``column_p_value`` (the novelty
view's rule), the batch drifted (a column written in other units, ``65 W`` for ``65``, makes
every row fail while the rows left may look like the reference). A batch in which no row is
valid is an error (:class:`~clusterflow.errors.ValidationFailed`), not a drift verdict.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.drift import (
    DriftResult,
    DriftSample,
    DriftThresholds,
    compare,
    p_equals,
    share_rose,
)
from clusterflow.embed import Embedder
from clusterflow.errors import ValidationFailed
from clusterflow.model import ClusterModel
from clusterflow.schema import reason_group, validate_records
from clusterflow.scoring import assignment_ids, score_frame

__all__ = [
    "MonitorOutcome",
    "assignment_ids",
    "compare_batch",
    "monitor_frame",
    "reference_sample",
    "score_frame",
    "split_batch",
    "top_reasons",
]


@dataclass
class MonitorOutcome:
    """What monitoring one batch found.

    Attributes
    ----------
    result : DriftResult
        The comparison of the batch's valid rows with the champion's reference.
    rows_in : int
        Rows of the batch as read.
    quarantine : pandas.DataFrame
        The batch rows that failed validation, unchanged, plus a ``reason`` column (index: the
        row number in the batch).
    reference_rows : int
        Rows of the reference sample.
    """

    result: DriftResult
    rows_in: int
    quarantine: pd.DataFrame
    reference_rows: int
    training_quarantined_share: float | None = None
    quarantine_p_value: float | None = None
    quarantine_drifted: bool = False

    @property
    def rows_compared(self) -> int:
        """Rows of the batch that passed validation and were compared."""
        return self.rows_in - len(self.quarantine)

    def rows(self) -> dict[str, Any]:
        """Return the row accounting of the batch (``in == compared + quarantined``)."""
        return {
            "in": self.rows_in,
            "compared": self.rows_compared,
            "quarantined": len(self.quarantine),
            "quarantined_share": len(self.quarantine) / self.rows_in if self.rows_in else 0.0,
            "training_quarantined_share": self.training_quarantined_share,
            "quarantine_p_value": self.quarantine_p_value,
            "quarantine_drifted": self.quarantine_drifted,
            "reference": self.reference_rows,
            "top_quarantine_reasons": top_reasons(self.quarantine.get("reason", [])),
        }

    def to_dict(self) -> dict[str, Any]:
        """drift.json's content: the drift result plus ``rows``."""
        return {**self.result.to_dict(), "rows": self.rows()}


def top_reasons(reasons: Iterable[object], top: int = 5) -> list[dict[str, Any]]:
    """Return the ``top`` most common problems of the quarantined rows, with one example value.

    A row's reason lists its problems (``"; "``-joined); each counts once per row under its
    column and problem, whatever the cell held (:func:`clusterflow.schema.reason_group`), so
    172 rows of ``"3450 g"``, ``"3400 g"``... are one entry, ``body_mass_g: not a number``.
    """
    rows: Counter[str] = Counter()
    examples: dict[str, str | None] = {}
    for text in reasons:
        groups = dict(reason_group(part) for part in str(text).split("; "))
        rows.update(groups.keys())
        for group, value in groups.items():
            examples.setdefault(group, value)
    return [
        {"reason": group, "rows": count, "example": examples[group]}
        for group, count in rows.most_common(top)
    ]


def reference_sample(model: ClusterModel) -> DriftSample:
    """Return the training sample the model carries, as a drift sample.

    Raises
    ------
    ValidationFailed
        The model was not loaded from a folder holding ``reference.parquet``.
    """
    if model.folder is None or not (Path(model.folder) / "reference.parquet").exists():
        raise ValidationFailed(
            "the model carries no reference sample to compare against",
            hint="retrain with this version of clusterflow",
        )
    folder = Path(model.folder)
    ref = pd.read_parquet(folder / "reference.parquet")
    emb_path = folder / "reference_embeddings.npy"
    return DriftSample.from_assignments(
        ref[list(model.roles.features)],
        ref,
        np.load(emb_path) if emb_path.exists() else None,
        prefix="__",
    )


def split_batch(
    model: ClusterModel,
    frame: pd.DataFrame,
    *,
    allow_empty: bool = False,
    source: str = "batch",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate a batch against the champion's schema.

    Parameters
    ----------
    model : ClusterModel
        The champion (its column roles define the schema).
    frame : pandas.DataFrame
        The batch as read (unique index: the row number).
    allow_empty : bool, default=False
        Return no valid rows instead of raising when every row fails (one partition of a
        batch; see :func:`clusterflow.schema.validate_records`).
    source : str, default="batch"
        The file's name, for messages.

    Returns
    -------
    valid : pandas.DataFrame
        The rows that passed, numeric columns as float.
    quarantine : pandas.DataFrame
        The other rows, unchanged, plus a ``reason`` column.

    Raises
    ------
    ValidationFailed
        The batch is empty, lacks a column the model reads, or no row passes.
    """
    if frame.empty:
        raise ValidationFailed(f"{source}: the batch has no rows", hint="monitor a file with rows")
    model.check_columns(frame, source=source)
    roles = model.roles
    if roles.id_column and roles.id_column not in frame.columns:
        # The id is not a feature: a batch without it is compared all the same.
        roles = dataclasses.replace(roles, id_column=None)
    outcome = validate_records(
        frame, roles, max_text_chars=1_000_000, allow_empty=allow_empty, source=source
    )
    quarantine = frame.loc[outcome.quarantined_rows].copy()
    quarantine["reason"] = [outcome.reasons[r] for r in outcome.quarantined_rows]
    return outcome.valid, quarantine


def monitor_frame(
    model: ClusterModel,
    frame: pd.DataFrame,
    thresholds: DriftThresholds | None = None,
    *,
    random_state: int = 0,
    embedder: Embedder | None = None,
    source: str = "batch",
) -> MonitorOutcome:
    """Compare a batch with the model's reference sample.

    Parameters
    ----------
    model : ClusterModel
        The champion, loaded from its folder (it carries the reference).
    frame : pandas.DataFrame
        The new batch as read.
    thresholds : DriftThresholds, optional
        When a difference counts as drift (defaults if omitted).
    random_state : int, default=0
        Seed of the domain classifier.
    embedder : Embedder, optional
        Embedder for the text column (default: built from the model's spec, uncached).
    source : str, default="batch"
        The file's name, for messages.

    Returns
    -------
    MonitorOutcome
        The drift result over the valid rows, and the quarantined rows.

    Raises
    ------
    ValidationFailed
        The model has no reference, or the batch has no valid row.
    """
    reference = reference_sample(model)
    valid, quarantine = split_batch(model, frame, source=source)
    batch, _ = score_frame(model, valid, embedder=embedder)
    return compare_batch(
        model,
        reference,
        batch,
        rows_in=len(frame),
        quarantine=quarantine,
        thresholds=thresholds,
        random_state=random_state,
    )


def compare_batch(
    model: ClusterModel,
    reference: DriftSample,
    batch: DriftSample,
    *,
    rows_in: int,
    quarantine: pd.DataFrame,
    thresholds: DriftThresholds | None,
    random_state: int,
) -> MonitorOutcome:
    """Compare a scored batch with the model's reference: the outcome either path reports.

    Used by :func:`monitor_frame` and by the partitioned monitoring on Dask, which joins the
    partitions' drift samples first.
    """
    thresholds = DriftThresholds() if thresholds is None else thresholds
    result = compare(
        reference,
        batch,
        numeric_columns=list(model.roles.numeric),
        categorical_columns=list(model.roles.categorical),
        thresholds=thresholds,
        random_state=random_state,
        reference_missing=model.missing_shares,
    )
    trained = model.quarantined_share
    p_value, drifted = _quarantine_test(len(quarantine), rows_in, trained, thresholds)
    if drifted:
        share = len(quarantine) / rows_in
        result = dataclasses.replace(
            result,
            drift_detected=True,
            reasons=[
                *result.reasons,
                f"{share:.0%} of the batch's rows failed validation against {trained:.0%} of "
                f"the training rows ({p_equals(p_value)}); see quarantine.csv",
            ],
        )
    return MonitorOutcome(
        result=result,
        rows_in=rows_in,
        quarantine=quarantine,
        reference_rows=len(reference.clusters),
        training_quarantined_share=trained,
        quarantine_p_value=p_value,
        quarantine_drifted=drifted,
    )


def _quarantine_test(
    quarantined: int, rows_in: int, trained: float | None, thresholds: DriftThresholds
) -> tuple[float | None, bool]:
    """Test whether more of the batch failed validation than of the training rows.

    One-sided binomial test of the batch's count against the training share (at least one row
    in the batch's size, as the novelty view does for a reference without novel rows); drift
    when the share rose by more than ``quarantine_share`` and p < ``column_p_value``. No test
    when the training share is not known (``trained`` None: an older model, ``--impute drop``).
    """
    if not rows_in or trained is None:
        return None, False
    return share_rose(
        quarantined,
        rows_in,
        trained,
        floor=1.0 / rows_in,
        min_rise=thresholds.quarantine_share,
        level=thresholds.column_p_value,
    )
