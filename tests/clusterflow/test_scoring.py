"""Finding a registered model without MLflow: the same answer as MLflow's, or no answer at all."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clusterflow.errors import RegistryError
from clusterflow.model_registry import load_cluster_model, resolve_tracking_uri
from clusterflow.scoring import KNOWN_SCHEMAS, find_registered_model, tracking_uri
from tests.clusterflow.test_registry import NAME, train
from tests.conftest import bundled


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real SQLite store holding two versions of one model (v1 holds @champion)."""
    tmp = tmp_path_factory.mktemp("scoring-store")
    workspace = tmp / "ws"
    workspace.mkdir()
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        train(bundled("faithful.csv"), workspace)
        train(bundled("faithful.csv"), workspace, seed=1, k_max=3)
        yield SimpleNamespace(uri=uri, db=tmp / "mlflow.db", workspace=workspace)
    mlflow.set_tracking_uri(None)


@pytest.fixture
def copy_of(store, tmp_path, monkeypatch):
    """A copy of the store's database (the model files stay shared) that a test may change."""
    db = tmp_path / "mlflow.db"
    shutil.copy(store.db, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield SimpleNamespace(uri=uri, db=db, workspace=store.workspace)
    mlflow.set_tracking_uri(store.uri)


def _mlflow_version(uri: str):
    name, _, rest = uri.removeprefix("models:/").partition("@")
    if rest:
        return MlflowClient().get_model_version_by_alias(name, rest)
    name, _, version = uri.removeprefix("models:/").partition("/")
    return MlflowClient().get_model_version(name, version)


def test_finds_what_mlflow_finds(store):
    uris = [f"models:/{NAME}@champion", f"models:/{NAME}/1", f"models:/{NAME}/2"]
    uris += [f"models:/{NAME}@{a}" for a in MlflowClient().get_registered_model(NAME).aliases]
    for uri in uris:
        local = find_registered_model(uri, store.workspace)
        expected = _mlflow_version(uri)
        assert local is not None, uri
        assert (local.version, local.run_id) == (str(expected.version), expected.run_id), uri
        pyfunc = Path(mlflow.artifacts.download_artifacts(uri))
        assert local.folder == (pyfunc / "artifacts" / "model").resolve(), uri

    uri = f"models:/{NAME}@champion"
    frame = pd.read_csv(bundled("faithful.csv"))
    direct = find_registered_model(uri, store.workspace).load().predict(frame)
    through_mlflow = load_cluster_model(uri)[0].predict(frame)
    pd.testing.assert_frame_equal(direct, through_mlflow)


def test_unknown_model_alias_or_version_is_a_registry_error_as_in_mlflow(store):
    for uri in (f"models:/{NAME}/99", "models:/nope@champion", f"models:/{NAME}@nope"):
        with pytest.raises(RegistryError, match=f"no model {uri} in sqlite:///") as raised:
            find_registered_model(uri, store.workspace)
        assert "train a model first" in raised.value.one_line()
        there = "registered: " if "nope@" in uri else f"{NAME} has versions 1, 2 and aliases @"
        assert there in raised.value.one_line()  # what there is instead
        with pytest.raises(MlflowException):
            _mlflow_version(uri)


def test_the_latest_version_is_the_newest_as_mlflow_reads_it(store, copy_of):
    from clusterflow.model_uri import parse_model_uri

    uri = f"models:/{NAME}/latest"
    assert str(parse_model_uri(uri).model_version(MlflowClient()).version) == "2"
    assert find_registered_model(uri, store.workspace).version == "2"
    MlflowClient().delete_model_version(NAME, "2")
    assert find_registered_model(uri, copy_of.workspace).version == "1"
    assert str(parse_model_uri(uri).model_version(MlflowClient()).version) == "1"


def test_looking_up_a_model_creates_no_store(tmp_path, monkeypatch):
    from clusterflow_cli.preflight import check_model_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    typo = tmp_path / "typo"  # a mistyped --workspace
    with pytest.raises(RegistryError, match="there is no registry at .*typo") as raised:
        check_model_uri("models:/clusterflow@champion", str(typo))
    assert "--workspace" in raised.value.one_line()
    assert not typo.exists()


def test_follows_alias_moves_and_deleted_versions(copy_of):
    client = MlflowClient()
    client.set_registered_model_alias(NAME, "champion", "2")
    assert find_registered_model(f"models:/{NAME}@champion", copy_of.workspace).version == "2"
    client.delete_model_version(NAME, "1")
    with pytest.raises(RegistryError):
        find_registered_model(f"models:/{NAME}/1", copy_of.workspace)
    with pytest.raises(MlflowException):
        client.get_model_version(NAME, "1")


def test_leaves_to_mlflow_what_it_cannot_answer_as_mlflow(store, copy_of, monkeypatch):
    run_id = find_registered_model(f"models:/{NAME}/1", copy_of.workspace).run_id
    for uri in (f"runs:/{run_id}/model", f"models:/{NAME}@latest", f"models:/{NAME}@LATEST"):
        assert find_registered_model(uri, copy_of.workspace) is None, uri
    with sqlite3.connect(copy_of.db) as db:  # a store migrated by another MLflow
        db.execute("UPDATE alembic_version SET version_num = 'f00000000000'")
    assert find_registered_model(f"models:/{NAME}@champion", copy_of.workspace) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere.db")
    assert find_registered_model(f"models:/{NAME}@champion", store.workspace) is None
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")  # a server: never called
    assert find_registered_model(f"models:/{NAME}@champion", store.workspace) is None


def test_known_schemas_hold_the_installed_mlflow_revision(store):
    with sqlite3.connect(store.db) as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    # an MLflow upgrade that migrates the schema fails here: look at the registry tables, then
    # add the revision to KNOWN_SCHEMAS (until then score reads the registry through MLflow)
    assert revision in KNOWN_SCHEMAS


def test_tracking_uri_is_the_registry_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path / "ws") == resolve_tracking_uri(tmp_path / "ws")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert (
        tracking_uri(tmp_path / "ws") == resolve_tracking_uri(tmp_path / "ws") == "sqlite:///x.db"
    )


def test_unreadable_numbers_are_the_cells_validation_quarantines():
    """Score counts exactly the rows train would quarantine for their numbers ('nan' is a gap)."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from clusterflow.schema import ColumnRoles, validate_records
    from clusterflow.scoring import unreadable_numbers

    roles = ColumnRoles(id_column=None, text_column=None, numeric=("x", "y", "z"), categorical=())
    frame = pd.DataFrame(
        {
            "x": ["1", "NaN", "nan", "abc", "1e400", None, " ", "2", "3", "4"],
            "y": np.arange(10.0),
            "z": pd.array([1, None] * 5, dtype="Int64"),
        }
    )
    frame.loc[9, "y"] = np.inf
    found = unreadable_numbers(SimpleNamespace(roles=roles), frame)
    assert (found["rows"], found["example"]) == (4, "row 3, column x: 'abc'")
    assert sorted(validate_records(frame, roles, allow_empty=True).reasons) == [3, 4, 6, 9]


def test_a_numeric_column_with_no_readable_number_fails_the_whole_batch():
    """'3,750' in every row: a format change, not a few bad cells to fill as gaps."""
    from types import SimpleNamespace

    import numpy as np

    from clusterflow.errors import ValidationFailed
    from clusterflow.schema import ColumnRoles
    from clusterflow.scoring import check_readable_columns, unreadable_numbers

    roles = ColumnRoles(id_column=None, text_column=None, numeric=("x", "y"), categorical=())
    model = SimpleNamespace(roles=roles)
    frame = pd.DataFrame({"x": ["3,750", None, " ", "4,100"], "y": np.arange(4.0)})
    whole = unreadable_numbers(model, frame)
    assert whole["rows"] == 3  # the blank too, as train quarantines it
    with pytest.raises(ValidationFailed, match=r"b.csv: column x: no value reads as a number"):
        check_readable_columns([whole], "b.csv")
    # in partitions: one with a number, one without; together the column is readable
    parts = [unreadable_numbers(model, frame.iloc[:3]), unreadable_numbers(model, frame.iloc[3:])]
    with pytest.raises(ValidationFailed, match=r"first: row 0: '3,750'"):
        check_readable_columns(parts, "b.csv")
    frame.loc[3, "x"] = "12"
    check_readable_columns(
        [unreadable_numbers(model, frame.iloc[:3]), unreadable_numbers(model, frame.iloc[3:])],
        "b.csv",
    )
    blank = pd.DataFrame({"x": ["", " "], "y": [1.0, 2.0]})  # empty, not a changed format
    check_readable_columns([unreadable_numbers(model, blank)], "b.csv")


def test_rows_with_no_value_the_model_reads_are_counted():
    from types import SimpleNamespace

    from clusterflow.schema import ColumnRoles
    from clusterflow.scoring import featureless_rows

    roles = ColumnRoles(id_column="id", text_column="t", numeric=("x",), categorical=("c",))
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "t": ["hello", " ", None, None],
            "x": [None, None, None, 1.0],
            "c": [None, None, " ", None],
            "other": [1, 2, 3, 4],
        }
    )
    found = featureless_rows(SimpleNamespace(roles=roles), frame)
    assert found == {"rows": 2, "example": "row 1"}


def test_an_id_column_named_cluster_is_refused_before_any_work(tmp_path):
    """score writes <id>,cluster: an id named cluster would leave one column, the ids lost."""
    from clusterflow.errors import ConfigError
    from clusterflow.scoring import score_id_column, score_table

    frame = pd.DataFrame({"cluster": [7, 8], "x": [1.0, 2.0]})
    old_model = SimpleNamespace(roles=SimpleNamespace(id_column="cluster"))  # trained before
    plain = SimpleNamespace(roles=SimpleNamespace(id_column=None))
    options = {"out": tmp_path / "o.csv", "model_uri": "m", "workspace": tmp_path}
    with pytest.raises(ConfigError, match="the model's id column 'cluster'") as raised:
        score_table(old_model, frame, **options)
    assert "pass --id-column with another column" in raised.value.one_line()
    with pytest.raises(ConfigError, match="--id-column 'cluster'") as raised:
        score_table(plain, frame, id_column="cluster", **options)
    assert "rename the column in the file" in raised.value.one_line()
    assert not (tmp_path / "o.csv").exists()
    assert score_id_column(old_model, "x") == "x"  # another id column named: fine


@pytest.mark.parametrize("name", ["distance", "novel"])
def test_details_never_overwrite_the_ids(name):
    from clusterflow.errors import ConfigError
    from clusterflow.scoring import check_detail_names

    check_detail_names(name, details=False)
    with pytest.raises(ConfigError, match=f"the id column '{name}'"):
        check_detail_names(name, details=True)


def test_categories_the_model_never_saw_are_counted_on_written_cells_only():
    from types import SimpleNamespace

    from sklearn.preprocessing import OneHotEncoder

    from clusterflow.scoring import unseen_categories

    encoder = OneHotEncoder(handle_unknown="ignore").fit(
        pd.DataFrame({"c": ["a", "b"], "d": ["True", "False"]})
    )
    features = SimpleNamespace(categorical_columns=("c", "d"), encoder_=encoder)
    frame = pd.DataFrame({"c": ["a", None, "A", "z"], "d": [True, False, None, True]})
    imputed = pd.DataFrame(
        {"c": ["a", "a", "A", "z"], "d": [True, False, True, True]}
    )  # gaps filled
    found = unseen_categories(SimpleNamespace(features=features), frame, imputed)
    assert found == {"rows": 2, "example": "row 2: c 'A'"}
    no_encoder = SimpleNamespace(features=SimpleNamespace(categorical_columns=()))
    assert unseen_categories(no_encoder, frame, imputed)["rows"] == 0


def test_repeated_ids_are_counted_after_their_first_row():
    import numpy as np

    from clusterflow.scoring import repeated_ids

    ids = np.array(["p1", "p2", "p1", None, None, "p1"], dtype=object)
    assert repeated_ids(ids) == {"rows": 2, "example": "row 2: 'p1'"}
    assert repeated_ids(np.array(["a", "b"], dtype=object)) == {"rows": 0, "example": None}


def test_score_notes_say_what_training_would_have_refused():
    from clusterflow.scoring import score_notes

    result = {
        "rows": 5,
        "unreadable": {"rows": 0, "example": None},
        "unseen_categories": {"rows": 1, "example": "row 3: island 'Anvers'"},
        "repeated_ids": {"rows": 2, "example": "row 4: 'P1'"},
        "id_fallback": "pid",
    }
    lines = score_notes(result)
    assert lines[0].startswith("1 row had a category the model never saw (first: row 3: island")
    assert lines[1].startswith("2 rows had the id of an earlier row (first: row 4: 'P1')")
    assert "'pid' is not in the file" in lines[2] and len(lines) == 3
    assert score_notes({"rows": 5}) == []  # a partitioned result has none of them


def test_monitor_checks_the_models_columns_before_any_flow(store, tmp_path, capsys):
    from clusterflow_cli.main import main

    uri = f"models:/{NAME}@champion"
    local = find_registered_model(uri, store.workspace)
    assert local.roles() == local.load().roles  # from the spec alone
    batch = tmp_path / "batch.csv"
    pd.read_csv(bundled("faithful.csv")).rename(columns={"waiting": "waiting "}).to_csv(batch)
    args = ["monitor", str(batch), "--model", uri, "--out", str(tmp_path / "out")]
    assert main([*args, "--workspace", str(store.workspace), "--no-event"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "['waiting'] that the model was trained on are missing" in line
    assert "(the file has 'waiting ' for 'waiting')" in line
    assert not (tmp_path / "out").exists()
