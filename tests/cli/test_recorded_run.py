"""A flow run recorded over Prefect's REST API, read back with Prefect's own client."""

from __future__ import annotations

import socket
from uuid import UUID

import pytest

from clusterflow.errors import ConfigError, ValidationFailed
from clusterflow_cli.recorded_run import CLI_TAG, recorded_run


@pytest.fixture
def api(prefect_harness) -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def _read(run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, LogFilter

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(run_id))
        flow = client.read_flow(flow_run.flow_id)
        logs = client.read_logs(LogFilter(flow_run_id={"any_": [flow_run.id]}))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id={"any_": [flow_run.id]})
        )
    return flow_run, flow, logs, artifacts


def test_a_finished_block_is_a_completed_run_with_its_log_and_summary(api):
    parameters = {"config": {"data": "batch.csv", "model_uri": "models:/m@champion"}}
    with recorded_run(api, "clusterflow-score", parameters) as run:
        assert run is not None and run.id
        run.outcome = "scored 3 rows with models:/m@champion"
        run.lines = ["scored 3 rows with models:/m@champion into out.csv"]
        run.markdown = "# Scored 3 rows"
    flow_run, flow, logs, artifacts = _read(run.id)
    assert flow.name == "clusterflow-score"
    assert flow_run.state.is_completed()
    assert flow_run.state.message == "scored 3 rows with models:/m@champion"
    assert flow_run.parameters == parameters
    assert CLI_TAG in flow_run.tags
    assert flow_run.start_time is not None and flow_run.end_time >= flow_run.start_time
    assert [log.message for log in logs] == run.lines
    assert [a.data for a in artifacts] == ["# Scored 3 rows"]


def test_an_error_in_the_block_fails_the_run_and_propagates(api):
    with pytest.raises(ValidationFailed), recorded_run(api, "clusterflow-score", {}) as run:
        raise ValidationFailed("batch.csv: column 'x' is missing", hint="add it")
    flow_run, _, _, _ = _read(run.id)
    assert flow_run.state.is_failed()
    assert "column 'x' is missing; add it" in flow_run.state.message


def test_an_unreachable_api_fails_before_the_block_runs():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entered = False
    with (
        pytest.raises(ConfigError, match="cannot record the run in the Prefect API") as raised,
        recorded_run(f"http://127.0.0.1:{port}/api", "clusterflow-score", {}),
    ):
        entered = True
    assert not entered
    assert "start it (clusterflow up), or unset PREFECT_API_URL" in raised.value.one_line()


def test_no_api_records_nothing():
    with recorded_run(None, "clusterflow-score", {}) as run:
        assert run is None
