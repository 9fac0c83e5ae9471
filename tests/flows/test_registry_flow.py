"""Training flow registration: a worse retrain leaves the champion; the summary says why."""

from __future__ import annotations

import json

import mlflow
from mlflow import MlflowClient

from clusterflow.config import TrainConfig
from tests.conftest import bundled


def _config(workspace, out, k_min, k_max) -> TrainConfig:
    # Penguins: a k=9..10 challenger loses to the k<=4 champion beyond the noise, out of sample
    # on 52 held-out rows (faithful's 41 held-out rows cannot tell k=6..8 from k=2: a tie).
    return TrainConfig(
        data=str(bundled("penguins.csv")),
        exclude_columns=("species", "year"),
        workspace=str(workspace),
        out_dir=str(out),
        sweep={"algorithms": ["kmeans"], "k_min": k_min, "k_max": k_max, "stability_resamples": 0},
        registry={"model_name": "geyser", "eval_sample": 200},
    )


def test_worse_retrain_keeps_champion_and_says_why(
    prefect_harness, mlflow_uri, workspace, tmp_path
):
    from clusterflow_orchestration.flows.training import training_flow

    first = training_flow(_config(workspace, tmp_path / "a", 2, 4))
    second = training_flow(_config(workspace, tmp_path / "b", 9, 10))
    assert first["promoted"] is True and first["model_version"] == "1"
    assert second["promoted"] is False
    assert "loses to champion version 1" in second["promotion_reason"]
    on_disk = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert on_disk["promoted"] is False and on_disk["promotion_reason"]
    # the gate's evidence: both scores, the interval, the agreement and the rows used
    gate = on_disk["gate"]
    assert gate["outcome"] == "worse" and gate["previous_champion"] == "1"
    assert gate["challenger_score"] < gate["champion_score"]
    assert gate["interval"][0] <= gate["difference"] <= gate["interval"][1] < 0
    assert 0 <= gate["agreement_ari"] <= 1 and gate["rows"] == round(0.15 * 344)
    record = json.loads((tmp_path / "b" / "gate.json").read_text())
    assert record["version"] == "2" and record["promoted"] is False
    assert record["interval"] == gate["interval"]
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("geyser", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("geyser", "challenger").version) == "2"
    # lineage: the MLflow run is linked to the Prefect flow run, and config + sweep are artifacts
    run = mlflow.get_run(second["mlflow_run_id"])
    assert run.data.tags.get("prefect.flow_run_id")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "gate.json", "cluster_map.json", "sweep"} <= artifacts
