"""Security defaults: loopback servers, redacted secrets, registry-only models, read-only input."""

from __future__ import annotations

import json
import os
import stat

import pytest

from clusterflow.config import TrainConfig
from clusterflow.errors import ConfigError
from clusterflow.model_registry import load_cluster_model, redact
from clusterflow_cli import stack
from flows.training import training_flow
from tests.conftest import bundled


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "postgresql://bob:s3cr3t@db.example:5432/mlflow",
            "postgresql://bob:***@db.example:5432/mlflow",
        ),
        ("mysql+pymysql://u:p%40ss@h/db", "mysql+pymysql://u:***@h/db"),
        ("https://user:token123@mlflow.example/", "https://user:***@mlflow.example/"),
        (
            "cannot reach postgresql://a:b@h/x (timeout)",
            "cannot reach postgresql://a:***@h/x (timeout)",
        ),
    ],
)
def test_passwords_in_uris_are_redacted(uri, expected):
    assert redact(uri) == expected


def test_a_uri_without_a_password_is_left_as_it_is(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert redact(uri) == uri


@pytest.mark.parametrize(
    "uri",
    ["{tmp}/some/model", "file://{tmp}/model", "http://evil.example/model.tar", "s3://b/m"],
)
def test_models_load_only_from_the_registry(uri, tmp_path):
    with pytest.raises(ConfigError, match="not in the registry"):
        load_cluster_model(uri.format(tmp=tmp_path))


def test_local_stack_binds_to_loopback():
    assert stack.HOST == "127.0.0.1"


def test_read_only_input_and_no_secret_in_outputs(
    prefect_harness, workspace, tmp_path, monkeypatch
):
    # The input file and its folder are read-only: the run must read it and write nothing beside it.
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    folder = tmp_path / "in"
    folder.mkdir()
    data = folder / "faithful.csv"
    data.write_bytes(bundled("faithful.csv").read_bytes())
    data.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        out = tmp_path / "out"
        summary = training_flow(
            config=TrainConfig(
                data=str(data),
                out_dir=str(out),
                workspace=str(workspace),
                sweep={"algorithms": ["kmeans"], "k_max": 4, "stability_resamples": 0},
            )
        )
    finally:
        folder.chmod(stat.S_IRWXU)
        data.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert summary["rows_clustered"] == 272
    assert sorted(os.listdir(folder)) == ["faithful.csv"]  # nothing written beside the input
    text = (out / "summary.json").read_text()
    assert json.loads(text)["tracking_uri"] == f"sqlite:///{db}"


def test_summary_redacts_a_secret_tracking_uri(monkeypatch):
    from clusterflow.model_registry import resolve_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://ml:hunter2@db/mlflow")
    assert "hunter2" not in redact(resolve_tracking_uri())


class SneakyEstimator:
    """A type no clusterflow model holds (it could run anything when rebuilt)."""

    def __init__(self) -> None:
        self.payload = "x"


@pytest.mark.parametrize(
    ("crafted", "named"),
    [
        (SneakyEstimator, "SneakyEstimator"),
        (lambda: {"run": os.system}, "system"),
    ],
    ids=["foreign-class", "os.system"],
)
def test_a_model_file_with_a_disallowed_type_is_refused(tmp_path, crafted, named):
    import skops.io as sio

    from clusterflow.errors import ValidationFailed
    from clusterflow.model import ClusterModel, allowed_types
    from clusterflow.schema import ColumnRoles

    roles = ColumnRoles(id_column=None, text_column=None, numeric=("x",), categorical=())
    folder = ClusterModel(
        roles=roles, imputer=None, features=None, clusterer=None, embedder=None
    ).save(tmp_path / "model")
    sio.dump(crafted(), folder / "clusterer.skops")
    spec = json.loads((folder / "spec.json").read_text())
    spec["formats"]["clusterer"] = "skops"
    (folder / "spec.json").write_text(json.dumps(spec))
    assert not any(named in t for t in allowed_types())
    with pytest.raises(
        ValidationFailed, match=rf"refuses to load type\(s\) \[.*{named}"
    ) as refused:
        ClusterModel.load(folder)
    # skops' own refusal stays attached, for --debug's traceback
    assert isinstance(refused.value.__cause__, sio.exceptions.UntrustedTypesFoundException)


def test_joblib_models_are_not_loaded(tmp_path):
    from clusterflow.errors import ValidationFailed
    from clusterflow.model import load_component

    (tmp_path / "clusterer.joblib").write_bytes(b"anything")
    with pytest.raises(ValidationFailed, match="only skops files are loaded"):
        load_component(tmp_path / "clusterer", "joblib")


def test_the_allow_list_is_exactly_what_the_readme_states():
    from clusterflow.model import allowed_types

    readme = (bundled("faithful.csv").parents[1] / "README.md").read_text()
    for name in allowed_types():
        assert f"`{name}`" in readme, f"{name} missing from the README's allow-list"
