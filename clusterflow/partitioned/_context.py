"""The frozen context every driver step after validation works in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.partitioned._workers import _gather_rows
from clusterflow.schema import ColumnRoles


@dataclass(frozen=True)
class StageContext:
    """The cluster, the run's config and where the validated partitions lie.

    Built once validation has counted the valid rows of every partition; the imputer fit, the
    transform, the sweep and the assignment read everything they share from here.
    """

    client: Any
    """The ``distributed.Client``."""
    config: TrainConfig
    folder: Path
    """The run's stage folder (shared with the workers)."""
    roles: ColumnRoles
    validated: stages.Validated
    names: tuple[str, ...]
    """``part-NNNNN`` of every partition, in order."""
    valid_offsets: np.ndarray
    """Global position of the first valid row of every partition."""
    has_text: bool

    @property
    def n_valid(self) -> int:
        """Valid rows over all partitions."""
        return self.validated.n_valid

    def paths(self, stage: str, suffix: str) -> list[str]:
        """Return the per-partition files of ``stage`` (``valid``, ``imputed``, ...)."""
        return [str(self.folder / stage / f"{name}{suffix}") for name in self.names]

    def gather(self, stage: str, suffix: str, positions: np.ndarray, **kw: Any) -> Any:
        """Rows at global valid ``positions`` of ``stage``'s files, gathered to the driver."""
        return _gather_rows(
            self.client, self.paths(stage, suffix), self.valid_offsets, positions, **kw
        )

    def gather_features(self, positions: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """Gather the imputed table and, with text, the vectors of the rows at ``positions``."""
        table = self.gather("imputed", ".parquet", positions)
        emb = self.gather("embeddings", ".npy", positions) if self.has_text else None
        return table, emb
