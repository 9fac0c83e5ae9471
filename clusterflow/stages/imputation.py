"""The impute stage: choose and fit the imputer on the training rows, fill every gap.

The training rows are the valid rows but the gate's held-out ones
(:mod:`clusterflow.stages.sampling`): the challenger's imputer never sees the rows it is judged on.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from clusterflow.config import ImputeMethod, TrainConfig
from clusterflow.errors import ConfigError
from clusterflow.io import write_parquet
from clusterflow.model import dump_component, load_component
from clusterflow.schema import ColumnRoles, post_impute_schema
from clusterflow.stages.handles import Imputed, Validated
from clusterflow.stages.sampling import holdout_settings, train_fit_rows, training_rows
from clusterflow.store import StageStore

NO_FEATURES = "none"
"""The imputer's name in a run with no tabular feature (a text-only table): nothing is fitted."""


def fitted_method(config: TrainConfig) -> str:
    """Return the imputer to fit: ``--impute``, or ``auto`` for ``drop``.

    ``drop`` quarantined the incomplete training rows; an imputer is still chosen, because
    scoring fills the gaps of new rows.
    """
    return "auto" if config.impute.method == ImputeMethod.drop else config.impute.method.value


def impute(
    validated: Validated, config: TrainConfig, store: StageStore, *, n_jobs: int | None = -1
) -> Imputed:
    """Fit the imputer on the training rows (choosing it by mask-and-score), fill every gap.

    ``n_jobs`` is the imputer's thread budget (scikit-learn's convention: -1 every core, None
    one thread); the results do not depend on it, so it is not part of the stage's key.
    """
    settings = config.impute.model_dump(mode="json")
    held_out = holdout_settings(config)
    key = store.key("impute", validated.key, settings, config.random_state, held_out)
    fill = partial(_impute_into, validated, config, n_jobs)
    return Imputed(**store.cached("impute", key, fill))


def _impute_into(
    validated: Validated, config: TrainConfig, n_jobs: int | None, tmp: Path, folder: Path
) -> dict[str, Any]:
    """Fit the imputer, fill the valid rows, and write the table, imputer and report into ``tmp``.

    With missing cells the missingness report and plot are written too.
    """
    roles = validated.column_roles
    table = pd.read_parquet(validated.valid_path, columns=list(roles.features))
    table = table.astype({c: float for c in roles.numeric})
    missing_cells = int(table.isna().sum().sum())
    method = NO_FEATURES
    imputer = None
    profile: dict = {}
    plot_path = None
    filled = table
    if roles.features:
        if missing_cells:
            profile = _profile_missingness(table, config, tmp)
            plot_path = str(folder / "missingness.png")
        held, train = training_rows(validated, config)
        fit_on = train_fit_rows(train, len(table), config.random_state)
        fit_table = table if fit_on is None else table.iloc[fit_on]
        check_fit_rows(fit_table, len(held))
        imputer, filled = _fit_and_fill(
            table, fit_table, fitted_method(config), roles, config, n_jobs
        )
        method = imputer.method_
    write_parquet(filled, tmp / "imputed.parquet")
    categorical = getattr(imputer, "categorical_method_", method) if roles.categorical else None
    return {
        "path": str(folder / "imputed.parquet"),
        "imputer_path": str(folder / "imputer"),
        "imputer_format": dump_component(imputer, tmp / "imputer"),
        "method": method,
        "categorical_method": categorical,
        "scores": _scores(imputer),
        "column_scores": _column_scores(imputer),
        "missing_cells": missing_cells,
        "profile": profile,
        "plot_path": plot_path,
    }


def make_imputer(
    method: str, roles: ColumnRoles, config: TrainConfig, n_jobs: int | None = -1
) -> Any:
    """Return the unfitted imputer of a run (in-process and partitioned alike).

    The candidates of "auto" and a blend's parts are fitted side by side on ``n_jobs``
    threads (the results do not depend on it).
    """
    from clusterflow.impute import TableImputer

    return TableImputer(
        method=method,
        numeric_columns=list(roles.numeric),
        categorical_columns=list(roles.categorical),
        n_neighbors=config.impute.n_neighbors,
        mask_fraction=config.impute.mask_fraction,
        score_sample=config.impute.score_sample,
        random_state=config.random_state,
        n_jobs=n_jobs,
    )


def load_imputer(imputed: Imputed):
    """Read the fitted imputer of an :class:`Imputed` handle."""
    return load_component(Path(imputed.imputer_path), imputed.imputer_format)


def _profile_missingness(table: pd.DataFrame, config: TrainConfig, folder: Path) -> dict:
    """Write the missingness report and plot into ``folder``; return the profile's fields."""
    from clusterflow.missingness import plot_missingness, profile_missingness

    prof = profile_missingness(table, random_state=config.random_state)
    (folder / "missingness.md").write_text(prof.to_markdown())
    plot_missingness(table, folder / "missingness.png")
    return prof.to_dict()


def check_fit_rows(fit_table: pd.DataFrame, n_held: int) -> None:
    """Raise :class:`ConfigError` when a column has no value in the rows the imputer is fitted on.

    Those are the training rows (down to a sample on large data): a column known only in the
    gate's held-out rows, say one added lately with ``--time-column``, cannot be imputed from them.
    """
    empty = [c for c in fit_table.columns if fit_table[c].isna().all()]
    if empty:
        raise ConfigError(
            f"column(s) {empty} have no value in the {len(fit_table)} training rows the imputer "
            f"is fitted on (the gate holds out {n_held} rows), nothing to impute them from",
            hint="list them in --exclude-columns, or hold out fewer rows (--holdout-share)",
        )


def _fit_and_fill(
    table: pd.DataFrame,
    fit_table: pd.DataFrame,
    method: str,
    roles: ColumnRoles,
    config: TrainConfig,
    n_jobs: int | None,
) -> tuple[Any, pd.DataFrame]:
    """Fit the imputer on ``fit_table`` (rows of ``table``) and fill every row of ``table``.

    The filled table is checked against the post-imputation schema before it is returned.
    """
    imputer = make_imputer(method, roles, config, n_jobs)
    imputer.fit(fit_table)
    filled = imputer.transform(table)
    categories = getattr(imputer, "categories_", None)
    # A filled cell must be a category seen in fit. An observed value is kept as it is (a
    # held-out row may hold a level no training row has), so the check sees the filled cells
    # only: observed cells stand in as the first level seen.
    filled_only = {
        c: filled[c].where(table[c].isna(), str(levels[0]))
        for c, levels in (categories or {}).items()
        if levels
    }
    post_impute_schema(roles, categories).validate(filled.assign(**filled_only), lazy=True)
    return imputer, filled


def _scores(imputer: Any) -> list[dict]:
    """Return the candidate imputers' scores (empty when none were compared or none imputed)."""
    if imputer is None or getattr(imputer, "scores_", None) is None:
        return []
    return json.loads(imputer.scores_.to_json(orient="records"))


def _column_scores(imputer: Any) -> list[dict]:
    """Return the per-column scores of the chosen imputer (empty when nothing was imputed)."""
    if imputer is None:
        return []
    return json.loads(imputer.column_scores_.to_json(orient="records"))
