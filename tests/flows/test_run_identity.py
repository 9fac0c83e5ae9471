"""Issue 13 item 8: one name and one clock for a run across Prefect and MLflow."""

from __future__ import annotations

import time

from mlflow import MlflowClient

from clusterflow.config import TrainConfig
from tests.conftest import bundled


def test_mlflow_run_is_named_and_dated_after_the_prefect_flow_run(
    prefect_harness, mlflow_uri, workspace, tmp_path
):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from clusterflow_orchestration.flows.training import training_flow

    config = TrainConfig(
        data=str(bundled("faithful.csv")),
        workspace=str(workspace),
        out_dir=str(tmp_path / "out"),
        sweep={"algorithms": ["kmeans"], "k_max": 3, "stability_resamples": 0},
        registry={"model_name": "geyser-identity", "experiment": "geyser-identity"},
    )
    state = training_flow(config=config, return_state=True)
    summary = state.result()
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        # Task runs are recorded from their state events, asynchronously: wait until every one
        # is recorded as finished and no more arrive.
        deadline, seen = time.monotonic() + 120, -1
        while True:
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            done = any(t.start_time for t in tasks) and all(
                t.state is not None and t.state.is_final() for t in tasks
            )
            if done and len(tasks) == seen:
                break
            assert time.monotonic() < deadline, f"task runs not all recorded: {len(tasks)}"
            seen = len(tasks) if done else -1
            time.sleep(0.5)
    ml = MlflowClient()
    run = ml.get_run(summary["mlflow_run_id"])
    assert run.info.run_name == flow_run.name
    assert run.data.tags["prefect.flow_run_id"] == str(flow_run_id)
    # the MLflow run starts with the flow run, before its first task, not at registration
    flow_start = int(flow_run.start_time.timestamp() * 1000)
    first_task = min(int(t.start_time.timestamp() * 1000) for t in tasks if t.start_time)
    assert run.info.start_time == flow_start
    assert run.info.start_time <= first_task <= run.info.end_time
    # the experiment opens on its training runs in MLflow 3's UI, not the GenAI overview
    experiment = ml.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
