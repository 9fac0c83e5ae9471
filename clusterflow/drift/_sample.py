"""One side of a drift comparison, as the champion model sees it: :class:`DriftSample`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clusterflow.errors import EmbeddingError, ValidationFailed

__all__ = ["DriftSample"]


@dataclass
class DriftSample:
    """One side of a drift comparison, as the champion model sees it.

    Parameters
    ----------
    table : pandas.DataFrame
        Imputed feature columns (numeric and categorical), without missing values.
    embeddings : numpy.ndarray or None
        ``(n_rows, dim)`` L2-normalised text embeddings, or None for a tabular-only model.
    clusters : numpy.ndarray
        ``(n_rows,)`` integer cluster ids assigned by the champion (-1 = noise).
    distances : numpy.ndarray
        ``(n_rows,)`` distance of each row to its nearest cluster centre.
    novel : numpy.ndarray
        ``(n_rows,)`` bool, the row is far from every cluster.
    missing : pandas.DataFrame, optional
        ``(n_rows, columns)`` bool, the cell was blank before imputation (a batch's: its
        share is tested against training's). None: not known (the reference, whose table is
        imputed training rows).
    """

    table: pd.DataFrame
    embeddings: np.ndarray | None
    clusters: np.ndarray
    distances: np.ndarray
    novel: np.ndarray
    missing: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        n = len(self.table)
        if n == 0:
            raise ValidationFailed(
                "drift sample has no rows", hint="compare needs at least one row on each side"
            )
        self.clusters = np.asarray(self.clusters)
        self.distances = np.asarray(self.distances, dtype=float)
        self.novel = np.asarray(self.novel, dtype=bool)
        for name in ("clusters", "distances", "novel"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValidationFailed(
                    f"drift sample field {name!r} has shape {arr.shape}, expected ({n},) "
                    "(one value per row of the table)",
                    hint="pass one value per table row",
                )
        if not np.issubdtype(self.clusters.dtype, np.integer):
            raise ValidationFailed(
                f"drift sample clusters have dtype {self.clusters.dtype}, expected integers",
                hint="pass the champion's integer cluster ids (-1 for noise)",
            )
        if self.missing is not None:
            self.missing = self.missing.reset_index(drop=True).astype(bool)
            if len(self.missing) != n:
                raise ValidationFailed(
                    f"drift sample missing-cell mask has {len(self.missing)} rows, expected {n}",
                    hint="pass one mask row per table row",
                )
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings, dtype=float)
            if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
                raise EmbeddingError(
                    f"drift sample embeddings have shape {self.embeddings.shape}, "
                    f"expected ({n}, dim) (one vector per table row)",
                    hint="embed every row of the table, or pass embeddings=None",
                )

    @classmethod
    def from_assignments(
        cls,
        table: pd.DataFrame,
        assignments: pd.DataFrame,
        embeddings: np.ndarray | None = None,
        *,
        prefix: str = "",
    ) -> DriftSample:
        """Build a sample from a table and the champion's per-row assignments.

        Parameters
        ----------
        table : pandas.DataFrame
            Imputed feature columns.
        assignments : pandas.DataFrame
            Columns ``<prefix>cluster``, ``<prefix>distance`` and ``<prefix>novel``, one row per
            table row, in the same order (the output of ``ClusterModel.predict`` with
            ``prefix=""``, or a stored reference with ``prefix="__"``).
        embeddings : numpy.ndarray, optional
            Text embeddings of the rows.
        prefix : str, default=""
            Prefix of the three assignment columns.

        Returns
        -------
        DriftSample

        Raises
        ------
        ValidationFailed
            An assignment column is missing, or the lengths differ.
        """
        names = [f"{prefix}{name}" for name in ("cluster", "distance", "novel")]
        missing = [name for name in names if name not in assignments.columns]
        if missing:
            raise ValidationFailed(
                f"assignments have no column(s) {missing} (they have {list(assignments.columns)})",
                hint="pass the champion's predictions (cluster, distance, novel) for these rows",
            )
        return cls(
            table=table.drop(columns=[c for c in names if c in table.columns]),
            embeddings=embeddings,
            clusters=assignments[names[0]].to_numpy(dtype=int),
            distances=assignments[names[1]].to_numpy(dtype=float),
            novel=assignments[names[2]].to_numpy(dtype=bool),
        )
