"""What the sweep stage keeps beside the model: the drift reference, the plots, the cards."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.config import TrainConfig
from clusterflow.model import ClusterModel
from clusterflow.schema import ColumnRoles
from clusterflow.stages.handles import Validated

logger = logging.getLogger(__name__)

REFERENCE_ROWS = 5000
"""Rows of the training data kept with the model as the drift reference."""


def write_reference(
    folder: Path,
    table: pd.DataFrame,
    embeddings: np.ndarray | None,
    labels: np.ndarray,
    distance: np.ndarray,
    model: ClusterModel,
    config: TrainConfig,
) -> None:
    """Keep a seeded sample of the training rows with the model: the drift reference."""
    rng = np.random.default_rng(config.random_state)
    n = len(table)
    pick = np.sort(rng.choice(n, size=min(n, REFERENCE_ROWS), replace=False))
    ref = table.iloc[pick].reset_index(drop=True).copy()
    ref["__cluster"] = labels[pick]
    ref["__distance"] = distance[pick]
    ref["__novel"] = distance[pick] > model.novelty_threshold
    ref.to_parquet(folder / "reference.parquet", index=False)
    if embeddings is not None:
        np.save(folder / "reference_embeddings.npy", embeddings[pick])


def missing_shares(validated: Validated, config: TrainConfig) -> dict[str, float] | None:
    """Share of blank cells per feature column in the valid training rows (drift's baseline).

    Read one file at a time (the partitioned run's valid rows are a folder of them). A numeric
    cell counts as blank when it is not a finite number, as :meth:`ClusterModel.prepare` reads
    it. None with ``--impute drop``, whose valid rows are the complete ones only.
    """
    if validated.schema_failure_share(config) is None:
        return None
    roles = validated.column_roles
    columns = list(roles.features)
    path = Path(validated.valid_path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    blank = dict.fromkeys(columns, 0)
    rows = 0
    for file in files:
        table = pd.read_parquet(file, columns=columns)
        rows += len(table)
        for column in columns:
            values = table[column]
            if column in roles.numeric:
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                blank[column] += int(np.count_nonzero(~np.isfinite(numbers)))
            else:
                blank[column] += int(values.isna().sum())
    return {column: blank[column] / rows if rows else 0.0 for column in columns}


def write_plots(
    folder: Path, results: pd.DataFrame, X: np.ndarray, labels: np.ndarray, config: TrainConfig
) -> dict[str, str]:
    """Draw the sweep table and the cluster map into ``folder``; return their paths by name.

    A plot that fails is logged and left out: a plot must never fail a training run.
    """
    from clusterflow.plots import plot_cluster_map, plot_sweep

    out = {}
    try:
        out["sweep"] = str(plot_sweep(results, folder / "sweep.png"))
        out["cluster_map"] = str(
            plot_cluster_map(
                X, labels, folder / "cluster_map.png", random_state=config.random_state
            )
        )
    except (ValueError, RuntimeError) as err:  # a plot must never fail a training run
        logger.warning("plotting failed: %s", err)
    return out


def write_cards(
    folder: Path,
    validated: Validated,
    table: pd.DataFrame,
    labels: np.ndarray,
    X: np.ndarray,
    clusterer: Any,
    roles: ColumnRoles,
) -> str | None:
    """Write the cluster cards (what each cluster holds) as markdown and JSON into ``folder``."""
    from clusterflow.cards import cards_markdown, cluster_cards

    texts = None
    if roles.text_column:
        texts = pd.read_parquet(validated.valid_path, columns=[roles.text_column])[
            roles.text_column
        ]
        texts = texts.fillna("").astype(str).tolist()
    cards = cluster_cards(
        table, labels, texts=texts, features=X, centers=getattr(clusterer, "cluster_centers_", None)
    )
    (folder / "cards.md").write_text(cards_markdown(cards))
    (folder / "cards.json").write_text(json.dumps(cards, indent=2, default=str))
    return str(folder / "cards.md")
