"""The small frozen handles the stages return: paths and hashes, never the data itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from clusterflow.config import ImputeMethod, TrainConfig
from clusterflow.schema import ColumnRoles


@dataclass(frozen=True)
class Snapshot:
    """The ingested table, as read, keyed by the file's content hash."""

    source: str
    fingerprint: str
    path: str
    n_rows: int
    columns: tuple[str, ...]
    reused: bool = False


@dataclass(frozen=True)
class Validated:
    """Rows that passed validation, and the quarantined ones with their reasons.

    Both files keep the snapshot's row numbers: the valid rows as their index, the quarantined
    ones in the ``row`` column beside the ``reason``.
    """

    key: str
    valid_path: str
    quarantine_path: str
    roles: dict
    n_valid: int
    n_quarantined: int
    reused: bool = False

    def schema_failure_share(self, config: TrainConfig) -> float | None:
        """Share of the file's rows that failed validation, or None when it is not known.

        With ``impute.method == "drop"`` the quarantine also holds the rows moved there for a
        gap, which monitoring never quarantines: the share of schema failures is not recorded.
        """
        if config.impute.method == ImputeMethod.drop:
            return None
        rows = self.n_valid + self.n_quarantined
        return self.n_quarantined / rows if rows else 0.0

    @property
    def column_roles(self) -> ColumnRoles:
        """The roles as an object."""
        return ColumnRoles.from_dict(self.roles)


@dataclass(frozen=True)
class Imputed:
    """The valid rows' tabular features with every gap filled, and the fitted imputer."""

    key: str
    path: str
    imputer_path: str
    imputer_format: str
    method: str
    scores: list[dict]
    missing_cells: int
    profile: dict = field(default_factory=dict)
    plot_path: str | None = None
    reused: bool = False
    column_scores: list[dict] = field(default_factory=list)
    categorical_method: str | None = None
    """The method that filled the categorical columns (None without them); the selection may
    choose another one for them than ``method``, the numeric columns'."""


@dataclass(frozen=True)
class Embedded:
    """Text vectors of the valid rows (zero rows where text is empty)."""

    key: str
    path: str
    model_id: str
    n_texts: int
    n_unique: int
    n_with_text: int
    reused: bool = False


@dataclass(frozen=True)
class Swept:
    """The sweep's outcome: the fitted model, the labels of the valid rows and the sweep table."""

    key: str
    model_dir: str
    labels_path: str
    results_path: str
    algorithm: str
    k: int
    metrics: dict
    rule: str
    disagreement: str
    noise_share: float
    holdout_path: str = ""
    n_holdout: int = 0
    plots: dict = field(default_factory=dict)
    runner_ups: list = field(default_factory=list)
    cards_path: str | None = None
    reused: bool = False

    def holdout(self) -> np.ndarray:
        """Positions (among the valid rows) of the rows held out for the gate."""
        if not self.holdout_path:
            return np.empty(0, dtype=int)
        return np.load(self.holdout_path)


def handle_dict(handle) -> dict:
    """Return a JSON-safe view of a stage handle (for logs and summaries)."""
    return asdict(handle)
