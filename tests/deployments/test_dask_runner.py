"""Training on a Dask LocalCluster (2 workers) assigns exactly what the default runner does."""

from __future__ import annotations

import pandas as pd
import pytest

from clusterflow.config import TrainConfig
from clusterflow_orchestration.deployments.runners import (
    dask_task_runner,
    task_runner_from_env,
    training_flow_on,
)
from tests.conftest import bundled


def test_runner_from_env():
    from prefect_dask import DaskTaskRunner

    assert task_runner_from_env({}) is None
    local = task_runner_from_env({"CLUSTERFLOW_DASK_ADDRESS": "local:3"})
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 3
    remote = task_runner_from_env({"CLUSTERFLOW_DASK_ADDRESS": "tcp://10.0.0.5:8786"})
    assert remote.address == "tcp://10.0.0.5:8786"


@pytest.mark.slow  # ~60 s: two training runs plus a LocalCluster on 2 shared cores
def test_dask_assignments_equal_default(prefect_harness, mlflow_uri, tmp_path):
    sample = pd.read_csv(bundled("birds_demo.csv")).sample(80, random_state=0)
    data = tmp_path / "birds80.csv"
    sample.to_csv(data, index=False)

    def config(name: str) -> TrainConfig:
        return TrainConfig(
            data=str(data),
            text_column="remarks",
            id_column="record_id",
            exclude_columns=("date", "phase_of_flt"),
            workspace=str(tmp_path / f"ws-{name}"),  # separate stores: both runs compute
            out_dir=str(tmp_path / name),
            impute={"method": "median"},
            sweep={"algorithms": ["kmeans"], "k_max": 4, "stability_resamples": 0},
        )

    default = training_flow_on(None)(config=config("default"), register_model=False)
    on_dask = training_flow_on(dask_task_runner(n_workers=2))(
        config=config("dask"), register_model=False
    )
    a = pd.read_csv(tmp_path / "default" / "assignments.csv")
    b = pd.read_csv(tmp_path / "dask" / "assignments.csv")
    assert len(a) == default["rows_clustered"] > 0
    pd.testing.assert_frame_equal(a, b)
    assert (default["k"], default["algorithm"]) == (on_dask["k"], on_dask["algorithm"])


@pytest.mark.parametrize("address", [None, "tcp://127.0.0.1:1"])
def test_dask_runner_kinds(address):
    runner = dask_task_runner(address)
    assert (runner.address == address) if address else runner.cluster_kwargs["processes"] is False
