"""Sweep: compare algorithms and cluster counts, publish the table, plots and cluster cards."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow_orchestration.tasks.common import stage_store


@task(name="sweep")
def sweep_task(
    validated: stages.Validated,
    imputed: stages.Imputed,
    embedded: stages.Embedded | None,
    config: TrainConfig,
) -> stages.Swept:
    """Fit the sweep and assemble the model; the chosen candidate and the rule are logged."""
    swept = stages.sweep(validated, imputed, embedded, config, stage_store(config.workspace))
    log = get_run_logger()
    log.info(
        "chose %s with k=%d%s: %s",
        swept.algorithm,
        swept.k,
        " (reused)" if swept.reused else "",
        swept.rule,
    )
    if swept.disagreement:
        log.warning("metrics disagree: %s", swept.disagreement)
    table = pd.read_csv(swept.results_path)
    create_table_artifact(
        table=table.round(4).astype(object).where(table.notna(), None).to_dict(orient="records"),
        key="sweep",
        description=f"Sweep: chose {swept.algorithm} k={swept.k}. {swept.rule}",
    )
    if swept.cards_path and Path(swept.cards_path).exists():
        create_markdown_artifact(
            Path(swept.cards_path).read_text(),
            key="cluster-cards",
            description="What each cluster holds",
        )
    return swept
