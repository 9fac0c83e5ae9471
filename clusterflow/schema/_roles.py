"""The column roles: what each input column is used for, and the id column's default name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ROW_ID = "row"
"""Name of the id column when the user gives none: the 0-based row number."""

CLUSTER_COLUMN = "cluster"
"""Name of the cluster column of ``assignments.csv`` and of score's output (``<id>,cluster``)."""


@dataclass(frozen=True)
class ColumnRoles:
    """What each input column is used for.

    Attributes
    ----------
    id_column : str or None
        The user's row identifier, or None for the row number.
    text_column : str or None
        The free-text column that is embedded.
    numeric, categorical : tuple of str
        Feature columns, in input order.
    excluded : dict
        Column name to the reason it is not a feature (user choice, empty, constant, id-like...).
    """

    id_column: str | None
    text_column: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """Tabular feature columns (numeric then categorical)."""
        return self.numeric + self.categorical

    @property
    def id_name(self) -> str:
        """The name of the id column in the outputs."""
        return self.id_column or ROW_ID

    def to_dict(self) -> dict:
        """Return a JSON-safe description."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ColumnRoles:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id_column=data["id_column"],
            text_column=data["text_column"],
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            excluded=dict(data.get("excluded", {})),
        )
