"""Train a birds sample, then score the same file by the scoring flow."""

from __future__ import annotations

import pandas as pd
import pytest

from clusterflow.config import ScoreConfig, TrainConfig
from tests.conftest import bundled


@pytest.fixture
def birds_sample(tmp_path):
    frame = pd.read_csv(bundled("birds_demo.csv")).sample(400, random_state=0)
    path = tmp_path / "birds400.csv"
    frame.to_csv(path, index=False)
    return path


def test_score_reproduces_training_assignments(
    prefect_harness, mlflow_uri, workspace, tmp_path, birds_sample
):
    from clusterflow_orchestration.flows.scoring import scoring_flow
    from clusterflow_orchestration.flows.training import training_flow

    out = tmp_path / "run"
    summary = training_flow(
        TrainConfig(
            data=str(birds_sample),
            text_column="remarks",
            id_column="record_id",
            workspace=str(workspace),
            out_dir=str(out),
            sweep={"algorithms": ["kmeans"], "k_max": 4, "stability_resamples": 0},
            registry={"model_name": "birds", "eval_sample": 200},
        )
    )
    assert summary["promoted"] is True
    scored = tmp_path / "scored.csv"
    result = scoring_flow(
        ScoreConfig(
            data=str(birds_sample),
            out=str(scored),
            model_uri="models:/birds@champion",
            workspace=str(workspace),
            details=True,
        )
    )
    assignments = pd.read_csv(out / "assignments.csv")
    got = pd.read_csv(scored)
    assert result["rows"] == 400 == len(got)
    assert list(got.columns) == ["record_id", "cluster", "distance", "novel"]
    merged = assignments.merge(got, on="record_id", suffixes=("_train", "_score"))
    assert len(merged) == len(assignments) == summary["rows_clustered"]
    assert (merged["cluster_train"] == merged["cluster_score"]).all()
    # quarantined rows are scored too (every input row gets a line)
    assert got["record_id"].is_unique


def test_score_with_unknown_model_is_a_registry_error(prefect_harness, mlflow_uri, tmp_path):
    from clusterflow.errors import RegistryError
    from clusterflow_orchestration.flows.scoring import scoring_flow

    with pytest.raises(RegistryError, match="cannot load models:/nothing@champion"):
        scoring_flow(
            ScoreConfig(
                data=str(bundled("faithful.csv")),
                out=str(tmp_path / "x.csv"),
                model_uri="models:/nothing@champion",
                workspace=str(tmp_path / "ws"),
            )
        )
