"""Issue 13 items 4 and 6: a run ends with working links; monitor says what reacts to drift."""

from __future__ import annotations

from clusterflow_cli import links


def test_links_point_at_the_servers_when_there_are_servers():
    env = {"PREFECT_API_URL": "http://127.0.0.1:4321/api"}
    assert links.flow_run_lines("abc", env) == [
        "  Prefect flow run:   http://127.0.0.1:4321/runs/flow-run/abc"
    ]
    lines = links.mlflow_lines("http://127.0.0.1:5055", "3", "r1", "my model", "2")
    assert lines == [
        "  MLflow run:         http://127.0.0.1:5055/#/experiments/3/runs/r1",
        "  model version:      http://127.0.0.1:5055/#/models/my%20model/versions/2",
    ]
    assert not any("mlflow ui" in line or "server start" in line for line in lines)


def test_without_servers_the_links_say_which_command_serves_them(tmp_path):
    """Item 6: on the stack the hint said `mlflow ui --backend-store-uri http://...`."""
    (prefect,) = links.flow_run_lines("abc", {})
    assert prefect.endswith("(after: prefect server start)")
    assert "http://127.0.0.1:4200/runs/flow-run/abc" in prefect
    uri = f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    lines = links.mlflow_lines(uri, "1", "r1", "clusterflow", "4")
    assert lines[0].endswith("http://127.0.0.1:5000/#/experiments/1/runs/r1")
    assert lines[-1] == f"  (MLflow pages after: mlflow ui --backend-store-uri {uri})"


def test_run_link_lines_use_the_summary():
    summary = {
        "mlflow_run_id": "r9",
        "mlflow_experiment_id": "7",
        "tracking_uri": "http://h:1",
        "model_uri": "models:/geyser/3",
        "model_version": "3",
    }
    lines = links.run_link_lines(summary, "f1", {"PREFECT_UI_URL": "http://h:2"})
    assert lines == [
        "  Prefect flow run:   http://h:2/runs/flow-run/f1",
        "  MLflow run:         http://h:1/#/experiments/7/runs/r9",
        "  model version:      http://h:1/#/models/geyser/versions/3",
    ]


def test_which_automation_reacts_to_a_drift_event():
    def automation(name, pattern, enabled=True, expect=(links.DRIFT_EVENT,)):
        trigger = {"expect": list(expect), "match": {"prefect.resource.id": pattern}}
        return {"name": name, "enabled": enabled, "trigger": trigger}

    found = [
        automation("dev", "clusterflow.model.models:/clusterflow-dev@*"),
        automation("mine", "clusterflow.model.models:/clusterflow@*"),
        automation("off", "clusterflow.model.models:/clusterflow@*", enabled=False),
        automation("other event", "*", expect=("prefect.flow-run.Completed",)),
    ]
    reacting = links.automations_reacting(found, "models:/clusterflow@champion")
    assert [a["name"] for a in reacting] == ["mine"]
    assert links.automations_reacting(found, "models:/nobody@champion") == []


def test_drift_without_a_prefect_server_says_nothing_reacts():
    assert links.drift_reaction_lines("models:/m@champion", emitted=False, environ={}) == []
    (line,) = links.drift_reaction_lines("models:/m@champion", emitted=True, environ={})
    assert "nothing reacts" in line and "PREFECT_API_URL" in line


def test_constants_agree_with_what_monitoring_emits_and_deployments_match():
    from clusterflow_orchestration.deployments.resolve import DRIFT_RESOURCE_PREFIX
    from clusterflow_orchestration.tasks.monitor import DRIFT_EVENT

    assert links.DRIFT_EVENT == DRIFT_EVENT
    assert links.DRIFT_RESOURCE_PREFIX == DRIFT_RESOURCE_PREFIX
