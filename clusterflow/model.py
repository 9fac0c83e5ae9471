"""The full path from a raw row to a cluster, as one object that can be saved and served.

:class:`ClusterModel` bundles the column roles (the schema check), the fitted imputer, the feature
builder, a *reference* to the text embedder (model id and settings: the weights come from the
installed package, not copied into every model version) and the fitted clusterer. ``predict`` on a
raw frame returns the cluster, the distance to the cluster's centre and a novelty flag.

Every fitted part is saved with skops (no pickle, no joblib) by :mod:`clusterflow.component_io`;
the cluster map that keeps published ids stable lives in :mod:`clusterflow.cluster_ids`. Both
modules' public names stay importable from here.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.cluster_ids import renumber, stage_with_cluster_map
from clusterflow.component_io import (
    _skops_io,  # noqa: F401  (benchmarks/cli_latency.py and a test import it from here)
    allowed_types,
    dump_component,
    load_component,
)
from clusterflow.embed import Embedder, MiniLMEmbedder, embed_column
from clusterflow.errors import ValidationFailed
from clusterflow.schema import ColumnRoles, coerce_numeric

__all__ = [
    "NOVELTY_QUANTILE",
    "ClusterModel",
    "EmbedderSpec",
    "allowed_types",
    "dump_component",
    "input_columns",
    "load_component",
    "stage_with_cluster_map",
]

logger = logging.getLogger(__name__)

NOVELTY_QUANTILE = 0.99
"""A row is novel when it is farther from its centre than this quantile of training rows."""


def input_columns(roles: ColumnRoles) -> list[str]:
    """Return the raw columns a model with ``roles`` reads: the features, then the text column."""
    return list(roles.features) + ([roles.text_column] if roles.text_column else [])


def check_input_columns(roles: ColumnRoles, columns: list, source: str = "input") -> None:
    """Raise ValidationFailed if a column a model with ``roles`` reads is not in ``columns``.

    A missing name that differs from one of ``columns`` only by spaces or case is named as such.
    """
    missing = [c for c in input_columns(roles) if c not in columns]
    if not missing:
        return
    near = {str(c).strip().lower(): c for c in columns}
    close = [f"{near[m.strip().lower()]!r} for {m!r}" for m in missing if m.strip().lower() in near]
    raise ValidationFailed(
        f"{source}: column(s) {missing} that the model was trained on are missing"
        + (f" (the file has {', '.join(close)})" if close else ""),
        hint="give a table with the columns the model was trained on (names as in the training "
        "file)",
    )


@dataclass
class EmbedderSpec:
    """How to rebuild the embedder at serving time (no weights stored)."""

    model: str
    precision: str
    max_chars: int
    batch_size: int = 64
    backend: str = "torch"  # models saved before the OpenVINO backend existed used torch

    def build(self, cache_path: str | Path | None = None, progress=None) -> MiniLMEmbedder:
        """Return an embedder with these settings (torch if OpenVINO is not installed here)."""
        from clusterflow.openvino_encoder import openvino_available

        backend = self.backend
        if backend == "openvino" and not openvino_available():
            logger.warning("the model was trained with OpenVINO vectors; encoding with torch here")
            backend = "torch"
        return MiniLMEmbedder(
            model=self.model,
            precision=self.precision,
            max_chars=self.max_chars,
            batch_size=self.batch_size,
            cache_path=cache_path,
            progress=progress,
            backend=backend,
        )


class ClusterModel:
    """Raw rows in, clusters out: schema, imputer, features, embedder reference, clusterer.

    Parameters
    ----------
    roles : ColumnRoles
        Which input columns are features, text and id.
    imputer : estimator
        Fitted ``TableImputer`` (``transform(frame) -> frame``), or None when there are no
        tabular features.
    features : estimator
        Fitted ``FeatureBuilder`` (``transform(frame, embeddings=...) -> ndarray``).
    clusterer : estimator
        Fitted ``ClusterSweep`` (``predict`` and ``transform`` on feature rows).
    embedder : EmbedderSpec, optional
        Present when the model embeds a text column.
    novelty_threshold : float
        Distance to the own centre above which a row is flagged novel.
    quarantined_share : float, optional
        Share of the training file's rows that failed validation (monitoring tests a batch's
        share against it). None when unknown: a model saved before it was recorded, or trained
        with ``--impute drop`` (whose quarantine also holds the incomplete rows).
    missing_shares : dict of str to float, optional
        Share of blank cells per feature column in the training file's valid rows (monitoring
        tests a batch's blank share against it). None when unknown, as ``quarantined_share``.
    """

    def __init__(
        self,
        *,
        roles: ColumnRoles,
        imputer: Any,
        features: Any,
        clusterer: Any,
        embedder: EmbedderSpec | None,
        novelty_threshold: float = float("inf"),
        cluster_map: dict[int, int] | None = None,
        quarantined_share: float | None = None,
        missing_shares: dict[str, float] | None = None,
    ) -> None:
        self.roles = roles
        self.imputer = imputer
        self.features = features
        self.clusterer = clusterer
        self.embedder = embedder
        self.novelty_threshold = novelty_threshold
        self.quarantined_share = quarantined_share
        self.missing_shares = missing_shares
        self.cluster_map = cluster_map or {}
        self.folder: Path | None = (
            None  # where the model was loaded from (its reference lives there)
        )

    # -- the path -----------------------------------------------------------------------------
    def check_columns(self, frame: pd.DataFrame, source: str = "input") -> None:
        """Raise ValidationFailed if a column the model reads is missing from ``frame``."""
        check_input_columns(self.roles, list(frame.columns), source)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Coerce types and impute the tabular features (cells that cannot be read become gaps)."""
        return self._impute(self.coerce(frame))

    def _impute(self, table: pd.DataFrame) -> pd.DataFrame:
        if self.imputer is None or not self.roles.features:
            return table
        return self.imputer.transform(table)

    def coerce(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the feature columns of ``frame`` typed, what cannot be read as a gap (NaN).

        Its gaps (``isna()``) are the cells :meth:`prepare` imputes.
        """
        table = coerce_numeric(frame[list(self.roles.features)], self.roles)
        for column in self.roles.numeric:
            values = table[column].to_numpy()
            table.loc[~np.isfinite(values), column] = np.nan
        return table

    def embed(self, frame: pd.DataFrame, embedder: Embedder | None = None) -> np.ndarray | None:
        """Embed the text column (zero vectors where the text is empty), or None if no text."""
        if not self.roles.text_column:
            return None
        if embedder is None:
            if self.embedder is None:
                raise ValidationFailed("the model has a text column but no embedder spec")
            built: Embedder = self.embedder.build()
            embedder = built
        vectors, _ = embed_column(embedder, frame[self.roles.text_column].tolist())
        return vectors

    def feature_matrix(
        self,
        frame: pd.DataFrame,
        *,
        embeddings: np.ndarray | None = None,
        embedder: Embedder | None = None,
        coerced: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray]:
        """Return the imputed table, the embeddings and the feature matrix of raw ``frame``.

        ``coerced``: :meth:`coerce` of ``frame`` when the caller has it already.
        """
        imputed = self._impute(self.coerce(frame) if coerced is None else coerced)
        if embeddings is None:
            embeddings = self.embed(frame, embedder)
        return imputed, embeddings, self.features.transform(imputed, embeddings=embeddings)

    def assign(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clusters and distances to the assigned centre for feature rows ``X``."""
        raw = np.asarray(self.clusterer.predict(X), dtype=int)
        distances = np.asarray(self.clusterer.transform(X), dtype=float)
        if distances.ndim == 2 and distances.shape[1] > 0:
            own = np.where(
                raw >= 0,
                distances[np.arange(len(raw)), np.clip(raw, 0, distances.shape[1] - 1)],
                distances.min(axis=1),
            )
        else:
            own = np.zeros(len(raw))
        return self.relabel(raw), own

    def relabel(self, raw: np.ndarray) -> np.ndarray:
        """Apply :attr:`cluster_map` to the clusterer's raw ids (noise, -1, stays -1).

        The map keeps cluster ids stable across retrains: it is set when a model follows a
        champion (see :func:`clusterflow.gate.match_clusters`).
        """
        if not self.cluster_map:
            return np.asarray(raw, dtype=int).copy()
        return renumber(raw, self.cluster_map)

    def raw_ids(self) -> list[int]:
        """Return the clusterer's own cluster ids, 0 .. k-1 (noise, -1, is not a cluster)."""
        return list(range(len(getattr(self.clusterer, "cluster_centers_", []))))

    def published_ids(self) -> set[int]:
        """Every cluster id this model can report (its own clusters after the map)."""
        ids = {self.cluster_map.get(c, c) for c in self.raw_ids()}
        return ids | set(self.cluster_map.values())

    def input_columns(self) -> list[str]:
        """Return the raw columns the model reads: features, then the text column."""
        return input_columns(self.roles)

    def typed_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the model's columns of ``frame`` typed as the served signature declares them.

        Numeric features become float64 (a column of integers with gaps would otherwise be
        declared ``long`` and reject a missing value at serving time), categorical and text
        columns become strings with missing values kept as None.
        """
        out = coerce_numeric(frame[self.input_columns()], self.roles)
        for column in self.roles.numeric:
            out[column] = out[column].astype("float64")
        text = [self.roles.text_column] if self.roles.text_column else []
        for column in [*self.roles.categorical, *text]:
            values = out[column]
            out[column] = values.where(values.notna(), None).astype(object)
            out.loc[values.notna(), column] = values[values.notna()].astype(str)
        return out

    def predict(
        self,
        frame: pd.DataFrame,
        *,
        embeddings: np.ndarray | None = None,
        embedder: Embedder | None = None,
    ) -> pd.DataFrame:
        """Assign raw rows to clusters.

        Returns
        -------
        pandas.DataFrame
            Columns ``cluster`` (int, -1 = noise), ``distance`` (to the cluster's centre) and
            ``novel`` (bool: farther than the novelty threshold), index of ``frame``.
        """
        self.check_columns(frame)
        _, _, X = self.feature_matrix(frame, embeddings=embeddings, embedder=embedder)
        labels, distance = self.assign(X)
        return pd.DataFrame(
            {"cluster": labels, "distance": distance, "novel": distance > self.novelty_threshold},
            index=frame.index,
        )

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path, *, written: Mapping[str, Path] | None = None) -> Path:
        """Write the model into ``folder`` (spec.json plus the fitted components).

        Parameters
        ----------
        folder : str or Path
            Where to write (created).
        written : mapping of str to Path, optional
            Components this model holds as they were read from a ``.skops`` file that
            :func:`~clusterflow.component_io.dump_component` wrote (the stem, by component name:
            the sweep stage's imputer is the impute stage's file). That file is copied, not
            written and checked again.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        components = {
            "imputer": self.imputer,
            "features": self.features,
            "clusterer": self.clusterer,
        }
        written = written or {}
        formats = {}
        for name, obj in components.items():
            source = written[name].with_suffix(".skops") if name in written else None
            if obj is not None and source is not None and source.is_file():
                shutil.copyfile(source, folder / f"{name}.skops")
                formats[name] = "skops"
            else:  # nothing written before, or the file is gone: write it (and read it back)
                formats[name] = dump_component(obj, folder / name)
        spec = {
            "roles": self.roles.to_dict(),
            "embedder": None if self.embedder is None else vars(self.embedder),
            "novelty_threshold": self.novelty_threshold,
            "quarantined_share": self.quarantined_share,
            "missing_shares": self.missing_shares,
            "cluster_map": {str(k): v for k, v in self.cluster_map.items()},
            "formats": formats,
        }
        (folder / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ClusterModel:
        """Read a model written by :meth:`save`."""
        folder = Path(folder)
        spec = json.loads((folder / "spec.json").read_text())
        parts = {name: load_component(folder / name, fmt) for name, fmt in spec["formats"].items()}
        model = cls(
            roles=ColumnRoles.from_dict(spec["roles"]),
            imputer=parts["imputer"],
            features=parts["features"],
            clusterer=parts["clusterer"],
            embedder=EmbedderSpec(**spec["embedder"]) if spec["embedder"] else None,
            novelty_threshold=float(spec["novelty_threshold"]),
            cluster_map={int(k): int(v) for k, v in spec.get("cluster_map", {}).items()},
            quarantined_share=spec.get("quarantined_share"),
            missing_shares=spec.get("missing_shares"),  # absent in models saved before
        )
        model.folder = folder
        return model
