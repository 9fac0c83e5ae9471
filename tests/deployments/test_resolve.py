"""Issue 13 items 2, 4, 5: deployments run where the user works, for the model the user trains,
and served deployments leave the work pool that `clusterflow up` deployed them to."""

from __future__ import annotations

from pathlib import Path

import yaml

from clusterflow_cli.links import automations_reacting
from clusterflow_orchestration.deployments.resolve import ROOT, resolve_document
from clusterflow_orchestration.deployments.serve import PREFECT_YAML, build_deployments, load_specs

DOCUMENT = yaml.safe_load(PREFECT_YAML.read_text())


def _dev(document: dict) -> dict[str, dict]:
    return {
        Path(d["entrypoint"].split(":")[0]).stem: d
        for d in document["deployments"]
        if d["name"] == "dev"
    }


def _paths(config: dict) -> list[str]:
    return [config[k] for k in ("data", "workspace", "out", "out_dir") if k in config]


def test_deploy_time_paths_are_absolute_and_outside_the_install_folder(tmp_path):
    resolved = resolve_document(DOCUMENT, tmp_path, model_name="clusterflow")
    dev = _dev(resolved)
    assert {d["parameters"]["config"]["workspace"] for d in dev.values()} == {
        str(tmp_path / ".clusterflow")
    }
    assert dev["scoring"]["parameters"]["config"]["out"] == str(
        tmp_path / "clusterflow-runs" / "dev-scores.csv"
    )
    # the demo data is read where clusterflow ships it (read only); nothing else points there
    demo = str(ROOT / "data" / "birds_demo.csv")
    for d in dev.values():
        for path in _paths(d["parameters"]["config"]):
            assert Path(path).is_absolute(), path
            assert path == demo or not Path(path).is_relative_to(ROOT), path
    # the flow runs' working directory (default outputs, paths typed in the UI) is the user's
    assert resolved["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path)}}
    ]
    for d in resolved["deployments"]:
        path = Path(d["entrypoint"].split(":")[0])
        assert path.is_absolute() and path.exists()
    # the trigger keeps its template and gets the same resolved settings
    (trigger,) = dev["training"]["triggers"]
    assert trigger["parameters"]["config"]["data"] == "{{ event.payload.data }}"
    assert trigger["parameters"]["config"]["workspace"] == str(tmp_path / ".clusterflow")
    # the original document is left as it was
    assert _dev(DOCUMENT)["training"]["parameters"]["config"]["workspace"] == ".clusterflow"


def test_a_data_file_in_the_working_folder_wins_over_the_bundled_one(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "birds_demo.csv").write_text("a\n1\n")
    dev = _dev(resolve_document(DOCUMENT, tmp_path))
    assert dev["training"]["parameters"]["config"]["data"] == str(
        tmp_path / "data" / "birds_demo.csv"
    )


def test_the_drift_automation_listens_for_the_model_the_user_trains(tmp_path):
    """Item 4: `train` registers `clusterflow` by default; dev's automation listened for
    `clusterflow-dev`, so a drift of the user's model retrained nothing."""
    as_written = _dev(DOCUMENT)["training"]["triggers"][0]
    automations = [{"name": "as written", "enabled": True, "trigger": as_written}]
    assert automations_reacting(automations, "models:/clusterflow@champion") == []

    dev = _dev(resolve_document(DOCUMENT, tmp_path, model_name="clusterflow"))
    (trigger,) = dev["training"]["triggers"]
    assert dev["training"]["parameters"]["config"]["registry"]["model_name"] == "clusterflow"
    assert trigger["parameters"]["config"]["registry"]["model_name"] == "clusterflow"
    assert dev["monitoring"]["parameters"]["config"]["model_uri"] == "models:/clusterflow@champion"
    assert dev["scoring"]["parameters"]["config"]["model_uri"] == "models:/clusterflow@champion"
    automations = [{"name": trigger["name"], "enabled": True, "trigger": trigger}]
    assert automations_reacting(automations, "models:/clusterflow@champion") == automations
    assert automations_reacting(automations, "models:/clusterflow-dev@champion") == []


def test_served_deployments_leave_the_work_pool_and_resolve_against_the_workdir(tmp_path):
    """Item 2, in part: `serve` re-applied the deployments `up` had put on the pool without
    unsetting the pool, so the pool's worker could take their runs too. (The crash itself, a
    served run loading its code "from storage at None" outside the checkout, needs a server:
    tests/integration/test_operations_walk.py.)"""
    specs = [s for s in load_specs(env="dev") if s.kind == "training"]
    (train,) = build_deployments(specs, workdir=tmp_path, model_name="mine")
    assert "work_pool_name" in train.model_fields_set and train.work_pool_name is None
    update = train.model_dump(mode="json", exclude_unset=True)
    assert update["work_pool_name"] is None  # sent to the server: clears the work queue
    config = train.parameters["config"]
    assert config["workspace"] == str(tmp_path / ".clusterflow")
    assert config["registry"]["model_name"] == "mine"
    assert train.triggers[0].match.root["prefect.resource.id"] == "clusterflow.model.models:/mine@*"
    # runs import the installed flow: no code download from a storage path (None outside the
    # checkout: "Downloading flow code from storage at None")
    assert train.entrypoint == "clusterflow_orchestration.flows.training.training_flow"
