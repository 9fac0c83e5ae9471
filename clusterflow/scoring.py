"""Batch scoring as a plain function: the one path that the score task and the CLI both use.

``clusterflow score`` without a configured Prefect API calls :func:`score_table` directly (load
the model, read the file, assign, write): no flow run, no Prefect import. With a Prefect API the
scoring flow's task calls the same function, so both write the same file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clusterflow.io import write_csv
from clusterflow.monitoring import assignment_ids, score_frame

__all__ = ["score_table"]


def score_table(
    model,
    frame: pd.DataFrame,
    *,
    out: str | Path,
    model_uri: str,
    workspace: str | Path,
    id_column: str | None = None,
    details: bool = False,
) -> dict:
    """Assign every row of ``frame`` with ``model`` and write ``<id>,cluster`` to ``out``.

    Goes through the unwrapped :class:`~clusterflow.model.ClusterModel`, so integer columns of
    the batch are accepted as they are (the served pyfunc's signature declares numeric inputs as
    double). The embedder (and with it torch) is built only when the model has a text column.

    Returns
    -------
    dict
        ``rows``, ``out``, ``model_uri``, ``novel`` (rows farther from their centre than the
        training rows were) and ``cluster_sizes``.
    """
    embedder = (
        model.embedder.build(Path(workspace) / "embeddings.sqlite") if model.embedder else None
    )
    _, assigned = score_frame(model, frame, embedder=embedder)
    id_name, ids = assignment_ids(model, frame, id_column)
    table = pd.DataFrame({id_name: ids, "cluster": assigned["cluster"].to_numpy()})
    if details:
        table["distance"] = assigned["distance"].to_numpy()
        table["novel"] = assigned["novel"].to_numpy()
    write_csv(table, out)
    sizes = table["cluster"].value_counts().sort_index()
    return {
        "rows": len(table),
        "out": str(out),
        "model_uri": model_uri,
        "novel": int(assigned["novel"].sum()),
        "cluster_sizes": {str(k): int(v) for k, v in sizes.items()},
    }
