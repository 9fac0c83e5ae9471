"""Scoring and drift of a new batch through the champion's own path (no Prefect here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clusterflow.drift import DriftResult, DriftSample, DriftThresholds, compare
from clusterflow.errors import ValidationFailed
from clusterflow.model import ClusterModel
from clusterflow.schema import ROW_ID


def reference_sample(model: ClusterModel) -> DriftSample:
    """The training sample the model carries, as a drift sample."""
    if model.folder is None or not (Path(model.folder) / "reference.parquet").exists():
        raise ValidationFailed(
            "the model carries no reference sample to compare against",
            hint="retrain with this version of clusterflow",
        )
    folder = Path(model.folder)
    ref = pd.read_parquet(folder / "reference.parquet")
    emb_path = folder / "reference_embeddings.npy"
    return DriftSample(
        table=ref[list(model.roles.features)],
        embeddings=np.load(emb_path) if emb_path.exists() else None,
        clusters=ref["__cluster"].to_numpy(dtype=int),
        distances=ref["__distance"].to_numpy(dtype=float),
        novel=ref["__novel"].to_numpy(dtype=bool),
    )


def score_frame(
    model: ClusterModel, frame: pd.DataFrame, embedder=None
) -> tuple[DriftSample, pd.DataFrame]:
    """Run ``frame`` through the model: the batch's drift sample and its assignments."""
    model.check_columns(frame)
    imputed, embeddings, X = model.feature_matrix(frame, embedder=embedder)
    labels, distance = model.assign(X)
    novel = distance > model.novelty_threshold
    sample = DriftSample(
        table=imputed.reset_index(drop=True),
        embeddings=embeddings,
        clusters=labels,
        distances=distance,
        novel=novel,
    )
    assigned = pd.DataFrame(
        {"cluster": labels, "distance": distance, "novel": novel}, index=frame.index
    )
    return sample, assigned


def monitor_frame(
    model: ClusterModel,
    frame: pd.DataFrame,
    thresholds: DriftThresholds,
    *,
    random_state: int = 0,
    embedder=None,
) -> DriftResult:
    """Compare a batch with the model's reference sample."""
    batch, _ = score_frame(model, frame, embedder=embedder)
    return compare(
        reference_sample(model),
        batch,
        numeric_columns=list(model.roles.numeric),
        categorical_columns=list(model.roles.categorical),
        thresholds=thresholds,
        random_state=random_state,
    )


def assignment_ids(
    model: ClusterModel, frame: pd.DataFrame, id_column: str | None
) -> tuple[str, np.ndarray]:
    """The id column name and values for score outputs (the row number when there is none)."""
    column = id_column or model.roles.id_column
    if column and column in frame.columns:
        return column, frame[column].to_numpy()
    if id_column:
        raise ValidationFailed(
            f"--id-column {id_column!r} is not a column of the input",
            hint="name an existing column or omit the option",
        )
    return ROW_ID, np.arange(len(frame))
