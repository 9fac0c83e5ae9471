"""The impute stage records the per-column scores next to the candidates' scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.store import StageStore
from tests.conftest import bundled


# The stage runs the missingness profile and plot too: 150 s on the loaded 2-core machine.
@pytest.mark.slow
def test_impute_stage_keeps_per_column_scores(workspace: Path) -> None:
    config = TrainConfig(
        data=str(bundled("penguins.csv")),
        workspace=str(workspace),
        exclude_columns=["species"],
        impute={"score_sample": 100},
    )
    store = StageStore(workspace / "store")
    snapshot = stages.ingest(config.data, store)
    validated = stages.validate(snapshot, config, store)
    imputed = stages.impute(validated, config, store, n_jobs=None)
    assert stages.load_imputer(imputed).n_jobs is None  # the budget the caller gave
    by_column = {record["column"]: record for record in imputed.column_scores}
    assert set(by_column) == set(validated.column_roles.features)
    assert by_column["sex"]["kind"] == "categorical_error"
    assert by_column["body_mass_g"]["error"] < by_column["body_mass_g"]["mean_error"]
    methods = {record["method"] for record in imputed.scores}
    assert {record["method"] for record in imputed.column_scores} <= methods
    # The cached stage gives the same records back.
    again = stages.impute(validated, config, store)  # the budget is not part of the key
    assert again.reused and again.column_scores == imputed.column_scores
    meta = json.loads((Path(imputed.path).parent / "meta.json").read_text())
    assert meta["column_scores"] == imputed.column_scores


@pytest.mark.parametrize(("text", "n_jobs"), [(None, -1), ("remarks", None)])
def test_the_flow_imputes_on_every_core_unless_text_is_embedded_beside_it(
    text: str | None, n_jobs: int | None
) -> None:
    """The training flow embeds while it imputes; threads beside the embedder's slowed birds."""
    from clusterflow.schema import ColumnRoles
    from clusterflow_orchestration.flows.training import imputer_threads

    roles = ColumnRoles(id_column=None, text_column=text, numeric=("x",), categorical=())
    assert imputer_threads(roles) == n_jobs
    imputer = stages.make_imputer("auto", roles, TrainConfig(data="unused.csv"), n_jobs)
    assert imputer.n_jobs == n_jobs
