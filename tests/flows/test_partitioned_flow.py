"""The partitioned training flow on a 2-process LocalCluster equals the in-process flow."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clusterflow.config import TrainConfig
from tests.conftest import bundled


@pytest.mark.slow  # a process LocalCluster loads the encoder in each worker: ~1-2 min here
def test_dask_processes_assign_what_the_default_flow_does(prefect_harness, mlflow_uri, tmp_path):
    from clusterflow_orchestration.flows.partitioned import partitioned_training_flow
    from clusterflow_orchestration.flows.training import training_flow

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

    # Scoring the same file on the process cluster writes the in-process assignments (each
    # worker loads the encoder once and embeds its own partition's texts; batches of other
    # texts pad differently, so distances agree to float precision, not to the last digit).
    from clusterflow.distributed import dask_client
    from clusterflow.io import read_table
    from clusterflow.model import ClusterModel
    from clusterflow.partitioned import score_partitioned
    from clusterflow.scoring import score_table

    (model_dir,) = (tmp_path / "ws-default" / "stages").glob("sweep/*/model/spec.json")
    model = ClusterModel.load(model_dir.parent)
    whole = score_table(
        model,
        read_table(data),
        out=tmp_path / "whole.csv",
        model_uri="m",
        workspace=tmp_path / "ws-score",
        details=True,
    )
    with dask_client("local:2") as client:
        parted = score_partitioned(
            model,
            data,
            client=client,
            out=tmp_path / "parted.csv",
            model_uri="m",
            workspace=tmp_path / "ws-score",
            details=True,
            partition_bytes=20_000,
        )
    assert parted["dask"]["partitions"] >= 2
    a, b = pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(tmp_path / "parted.csv")
    pd.testing.assert_frame_equal(a.drop(columns="distance"), b.drop(columns="distance"))
    pd.testing.assert_series_equal(a["distance"], b["distance"], rtol=1e-4)
    assert parted["rows"] == whole["rows"] == 400
