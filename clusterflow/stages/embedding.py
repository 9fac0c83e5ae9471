"""The embed stage: vectors of the valid rows' text column, and the embedder a model records."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.config import TrainConfig
from clusterflow.embed import MiniLMEmbedder, embed_column, model_identity, resolve_backend
from clusterflow.model import EmbedderSpec
from clusterflow.stages.common import ProgressFn
from clusterflow.stages.handles import Embedded, Validated
from clusterflow.store import StageStore


def embedder_spec(config: TrainConfig) -> EmbedderSpec:
    """Return the embedder settings a model records (and rebuilds at serving time)."""
    return EmbedderSpec(
        model=config.embed.model,
        precision=config.embed.precision.value,
        max_chars=config.embed.max_chars,
        batch_size=config.embed.batch_size,
        backend=resolve_backend(config.embed.backend.value),
    )


def embed(
    validated: Validated,
    config: TrainConfig,
    store: StageStore,
    *,
    progress: ProgressFn | None = None,
) -> Embedded | None:
    """Embed the text column of the valid rows (None when the data has no text column)."""
    roles = validated.column_roles
    if not roles.text_column:
        return None
    spec = embedder_spec(config)
    embedder = spec.build(
        cache_path=Path(config.workspace) / "embeddings.sqlite", progress=progress
    )
    key = store.key(
        "embed", validated.key, embedder.model_id, model_identity(spec.model), spec.max_chars
    )
    return Embedded(**store.cached("embed", key, partial(_embed_into, validated, embedder)))


def _embed_into(
    validated: Validated, embedder: MiniLMEmbedder, tmp: Path, folder: Path
) -> dict[str, Any]:
    """Embed the valid rows' text column into ``tmp`` (zero vectors where the text is empty)."""
    text_column = validated.column_roles.text_column
    texts = pd.read_parquet(validated.valid_path, columns=[text_column])[text_column]
    vectors, has_text = embed_column(embedder, texts.tolist())
    stats = embedder.last_stats
    np.save(tmp / "embeddings.npy", vectors)
    return {
        "path": str(folder / "embeddings.npy"),
        "model_id": embedder.model_id,
        "n_texts": int(has_text.sum()),
        "n_unique": int(stats.get("unique", 0)),
        "n_with_text": int(has_text.sum()),
    }
