"""prefect.yaml and the serve entry: every deployment's parameters fit its flow, the UI form
(parameter schema) is complete, schedules and the drift trigger are well formed."""

from __future__ import annotations

import pytest
import yaml
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import is_valid, is_valid_schema

from clusterflow.config import MonitorConfig, ScoreConfig, TrainConfig
from clusterflow.errors import ConfigError
from clusterflow_orchestration.deployments.serve import (
    PREFECT_YAML,
    ROOT,
    build_deployments,
    load_specs,
    parse_overrides,
)
from clusterflow_orchestration.tasks.monitor import DRIFT_EVENT

CONFIGS = {"training": TrainConfig, "monitoring": MonitorConfig, "scoring": ScoreConfig}
SPECS = load_specs()


def _schema(entrypoint: str) -> dict:
    flow = load_flow_from_entrypoint(str(ROOT / entrypoint))
    return parameter_schema(flow).model_dump_for_openapi()


def test_every_flow_has_dev_and_prod_deployments_on_the_process_pool():
    pairs = {(s.kind, s.name) for s in SPECS}
    assert pairs == {(k, e) for k in CONFIGS for e in ("dev", "prod")}
    assert {s.work_pool["name"] for s in SPECS} == {"clusterflow-process"}
    pools = yaml.safe_load(PREFECT_YAML.read_text())["definitions"]["work_pools"]
    assert pools["process"]["name"] == "clusterflow-process"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}-{s.name}")
def test_parameters_build_the_flow_config_and_match_the_schema(spec):
    config = CONFIGS[spec.kind](**spec.parameters["config"])
    assert config.data
    schema = _schema(spec.entrypoint)
    is_valid_schema(schema)
    assert is_valid(spec.parameters, schema)
    assert not is_valid({"config": {**spec.parameters["config"], "bogus": 1}}, schema)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_ui_form_has_descriptions_defaults_and_enums(kind):
    spec = next(s for s in SPECS if s.kind == kind)
    schema = _schema(spec.entrypoint)
    defs = schema["definitions"]
    config_def = defs[CONFIGS[kind].__name__]
    fields = config_def["properties"]
    described = [name for name, f in fields.items() if f.get("description")]
    # every plain field carries a description; nested models carry their class description
    for name, field in fields.items():
        if "$ref" in field or "allOf" in field:
            ref = (field.get("$ref") or field["allOf"][0]["$ref"]).rsplit("/", 1)[-1]
            assert defs[ref].get("description"), ref
        else:
            assert name in described, f"{kind}: {name} has no description"
    if kind == "training":
        assert defs["Algorithm"]["enum"] == ["kmeans", "agglomerative", "hdbscan", "gmm"]
        assert "iterative" in defs["ImputeMethod"]["enum"]
        assert defs["SweepConfig"]["properties"]["k_min"]["default"] == 2
        assert defs["ImputeConfig"]["properties"]["method"]["default"] == "auto"


def test_prod_schedules_nightly_monitoring_and_weekly_training():
    crons = {s.kind: [c["cron"] for c in s.schedules] for s in SPECS if s.name == "prod"}
    assert crons["monitoring"] == ["0 2 * * *"]
    assert crons["training"] == ["0 3 * * 0"]
    assert all(not s.schedules for s in SPECS if s.name == "dev")
    built = build_deployments([s for s in SPECS if s.name == "prod"])
    tz = {d.flow_name: d.schedules[0].schedule.timezone for d in built}
    assert set(tz.values()) == {"UTC"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_retrain_trigger_matches_the_drift_event_and_templates_the_data(env):
    spec = next(s for s in SPECS if s.kind == "training" and s.name == env)
    (raw,) = spec.triggers
    trigger = DeploymentEventTrigger(**{k: v for k, v in raw.items() if k != "type"})
    assert trigger.expect == {DRIFT_EVENT}
    config = trigger.parameters["config"]
    assert config["data"] == "{{ event.payload.data }}"
    # the drifted model's settings are read at run time; the rest is the environment's
    # training parameters (its workspace, the registry to write to), and it
    # may replace a champion that cannot read the drifted data (other columns)
    assert config["settings_from"] == "{{ event.payload.settings_from }}"
    own = ("data", "registry", "settings_from")
    assert {k: v for k, v in config.items() if k not in own} == {
        k: v for k, v in spec.parameters["config"].items() if k not in own
    }
    assert config["registry"] == {
        **spec.parameters["config"]["registry"],
        "replace_incompatible": True,
    }
    assert TrainConfig(**{**config, "data": "x.csv"}).registry.replace_incompatible
    model = f"clusterflow{'-dev' if env == 'dev' else ''}"
    monitor = next(s for s in SPECS if s.kind == "monitoring" and s.name == env)
    assert monitor.parameters["config"]["model_uri"] == f"models:/{model}@champion"
    # the resource id monitoring emits is matched by this trigger only, not the other env's
    resource_id = f"clusterflow.model.models:/{model}@champion"
    pattern = trigger.match.root["prefect.resource.id"]
    assert resource_id.startswith(pattern.rstrip("*"))
    other = next(s for s in SPECS if s.kind == "training" and s.name != env).triggers[0]
    assert not resource_id.startswith(other["match"]["prefect.resource.id"].rstrip("*"))


def test_event_template_renders_the_payload_path():
    """The server's own RunDeployment renderer turns the template into the event's data."""
    import asyncio
    from datetime import UTC, datetime
    from uuid import uuid4

    from prefect.server.events.actions import RunDeployment
    from prefect.server.events.schemas.automations import TriggeredAction
    from prefect.server.events.schemas.events import ReceivedEvent

    spec = next(s for s in SPECS if s.kind == "training" and s.name == "dev")
    action = RunDeployment(
        source="selected", deployment_id=uuid4(), parameters=spec.triggers[0]["parameters"]
    )
    event = ReceivedEvent(
        occurred=datetime.now(UTC),
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": "clusterflow.model.models:/clusterflow-dev@champion"},
        payload={
            "data": "/batches/2024-05.csv",
            "model_uri": "models:/clusterflow-dev@champion",
            "settings_from": "runs:/0123abcd/model",
        },
        id=uuid4(),
    )
    triggered = TriggeredAction.model_construct(
        automation=None,
        firing=None,
        triggered=datetime.now(UTC),
        triggering_labels={},
        triggering_event=event,
        action=action,
        action_index=0,
        id=uuid4(),
    )
    rendered = asyncio.run(action.render_parameters(triggered))
    assert rendered["config"]["data"] == "/batches/2024-05.csv"
    # the retrain takes the drifted model's columns and settings, not the demo's
    assert rendered["config"]["settings_from"] == "runs:/0123abcd/model"  # the run that drifted
    TrainConfig(**rendered["config"])


def test_overrides_deep_merge_into_parameters_and_trigger():
    overrides = parse_overrides(["training.sweep.k_max=3", "training.text_column=null"])
    assert overrides == {"training": {"config": {"sweep": {"k_max": 3}, "text_column": None}}}
    (train,) = build_deployments(
        [s for s in SPECS if s.kind == "training" and s.name == "dev"], overrides=overrides
    )
    config = train.parameters["config"]
    assert config["sweep"]["k_max"] == 3 and config["sweep"]["algorithms"] == ["kmeans"]
    assert config["text_column"] is None
    assert train.triggers[0].parameters["config"]["sweep"]["k_max"] == 3
    assert train.triggers[0].parameters["config"]["data"] == "{{ event.payload.data }}"


def test_overriding_the_data_keeps_the_retrain_on_the_drifted_batch():
    """`serve --set training.data=my.csv` replaced the trigger's `{{ event.payload.data }}` too,
    so retraining on drift trained on my.csv again (found by the issue 13 operations walk)."""
    overrides = parse_overrides(["training.data=my.csv"])
    (train,) = build_deployments(
        [s for s in SPECS if s.kind == "training" and s.name == "dev"], overrides=overrides
    )
    assert train.parameters["config"]["data"] == "my.csv"
    assert train.triggers[0].parameters["config"]["data"] == "{{ event.payload.data }}"


def test_bad_override_and_unknown_env_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="bad override 'k_max'") as err:
        parse_overrides(["k_max"])
    assert "KIND.FIELD=VALUE" in err.value.one_line()
    with pytest.raises(ConfigError, match="no deployments named 'qa'"):
        load_specs(env="qa")
    with pytest.raises(ConfigError, match="cannot read"):
        load_specs(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("item", "where"),
    [
        ("training.nosuch=3", "training.nosuch"),
        ("training.sweep.k_max=many", "training.sweep.k_max"),
    ],
)
def test_an_override_the_flow_would_reject_is_one_line_before_serving(item, where):
    """`serve --set training.nosuch=3` reached the server, which answered 409 Conflict."""
    with pytest.raises(ConfigError, match=f"deployment dev: {where}: ") as err:
        build_deployments(
            [s for s in SPECS if s.kind == "training" and s.name == "dev"],
            overrides=parse_overrides([item]),
        )
    assert "--set" in err.value.one_line()


def test_serve_refuses_deployments_a_worker_serves(prefect_harness):
    """`serve` beside `up`'s worker took its deployments over and left them paused on exit."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from clusterflow_orchestration.deployments.serve import check_not_served_by_a_worker

    (train,) = build_deployments([s for s in SPECS if s.kind == "training" and s.name == "dev"])
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="served-pool", type="process"), overwrite=True)
        flow_id = client.create_flow_from_name(train.flow_name)
        client.create_deployment(flow_id=flow_id, name=train.name, work_pool_name="served-pool")
        check_not_served_by_a_worker([train])  # on a pool without a worker: served, as documented
        client.send_worker_heartbeat("served-pool", "a-worker")
        with pytest.raises(ConfigError, match=f"{train.flow_name}/dev is served by a worker"):
            check_not_served_by_a_worker([train])
