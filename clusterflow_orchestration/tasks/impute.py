"""Impute: choose the imputer by mask-and-score and fill every gap of the valid rows."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow_orchestration.tasks.common import markdown_table, stage_store


@task(name="impute")
def impute_task(
    validated: stages.Validated, config: TrainConfig, n_jobs: int | None = -1
) -> stages.Imputed:
    """Fit and apply the imputer (on ``n_jobs`` threads); publish its profile and scores."""
    imputed = stages.impute(validated, config, stage_store(config.workspace), n_jobs=n_jobs)
    get_run_logger().info(
        "imputed %d missing cells with %s%s",
        imputed.missing_cells,
        imputed.method,
        " (reused)" if imputed.reused else "",
    )
    parts = [
        f"# Imputation\n\n{imputed.missing_cells} missing cells filled with **{imputed.method}**."
    ]
    if imputed.scores:
        parts.append("## Mask-and-score\n\n" + markdown_table(pd.DataFrame(imputed.scores)))
    if imputed.column_scores:
        parts.append(
            "## Per column (chosen method vs the column's mean or mode, same hidden cells)\n\n"
            + markdown_table(pd.DataFrame(imputed.column_scores))
        )
        for record in imputed.column_scores:
            if record["no_better_than_mean"]:
                get_run_logger().warning(
                    "column %r is restored no better than by its mean (%s %.3f vs %.3f)",
                    record["column"],
                    record["kind"],
                    record["error"],
                    record["mean_error"],
                )
    if imputed.profile:
        from pathlib import Path

        md = Path(imputed.path).parent / "missingness.md"
        if md.exists():
            parts.append(md.read_text())
    create_markdown_artifact("\n\n".join(parts), key="imputation", description="Missing values")
    return imputed
