"""The partitioned training flow on a 2-process LocalCluster equals the in-process flow."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clusterflow.config import TrainConfig
from tests.conftest import bundled


@pytest.mark.slow  # a process LocalCluster loads the encoder in each worker: ~1-2 min here
def test_dask_processes_assign_what_the_default_flow_does(prefect_harness, mlflow_uri, tmp_path):
    from flows.partitioned import partitioned_training_flow
    from flows.training import training_flow

    sample = pd.read_csv(bundled("birds_demo.csv")).sample(400, random_state=0)
    data = tmp_path / "birds400.csv"
    sample.to_csv(data, index=False)

    def config(name: str) -> TrainConfig:
        return TrainConfig(
            data=str(data),
            text_column="remarks",
            id_column="record_id",
            exclude_columns=("date", "phase_of_flt"),
            workspace=str(tmp_path / f"ws-{name}"),  # separate stores and vector caches
            out_dir=str(tmp_path / name),
            sweep={"algorithms": ["kmeans"], "k_max": 6, "stability_resamples": 0},
        )

    default = training_flow(config=config("default"), register_model=False)
    on_dask = partitioned_training_flow(
        config=config("dask"), dask_address="local:2", register_model=True, partition_bytes=20_000
    )
    a = pd.read_csv(tmp_path / "default" / "assignments.csv")
    b = pd.read_csv(tmp_path / "dask" / "assignments.csv")
    assert len(a) == default["rows_clustered"] > 0
    pd.testing.assert_frame_equal(a, b)
    assert (default["k"], default["algorithm"]) == (on_dask["k"], on_dask["algorithm"])
    summary = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert summary["rows_in"] == summary["rows_clustered"] + summary["rows_quarantined"] == 400
    assert summary["dask"]["workers"] == 2
    assert summary["dask"]["partitions"] >= 2
    assert summary["dask"]["seconds"]["transform"] > 0
    assert summary["model_version"] is not None
