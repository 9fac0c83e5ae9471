"""Registration on a real MLflow store: gate, rollback, stable ids, fresh-process load."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.model_registry import CHALLENGER, CHAMPION, load_cluster_model
from clusterflow.registration import apply_cluster_map, register_training
from clusterflow.store import StageStore
from tests.conftest import bundled

NAME = "faithful"


def train(data, workspace, *, k_min=2, k_max=4, seed=0, **registry) -> tuple:
    config = TrainConfig(
        data=str(data),
        workspace=str(workspace),
        random_state=seed,
        sweep={"algorithms": ["kmeans"], "k_min": k_min, "k_max": k_max, "stability_resamples": 0},
        registry={"model_name": NAME, "eval_sample": 200, **registry},
    )
    store = StageStore(workspace / "store")
    snap = stages.ingest(config.data, store)
    val = stages.validate(snap, config, store)
    imp = stages.impute(val, config, store)
    swept = stages.sweep(val, imp, None, config, store)
    reg = register_training(
        config=config, snapshot=snap, validated=val, imputed=imp, embedded=None, swept=swept
    )
    return reg, swept


def alias_version(alias: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, alias).version)


def test_first_model_is_champion_logged_from_code_with_double_inputs(mlflow_uri, workspace):
    reg, swept = train(bundled("faithful.csv"), workspace)
    assert reg.promoted and reg.reason == "no champion yet"
    assert alias_version(CHAMPION) == reg.model_version == "1"
    info = mlflow.models.get_model_info(f"models:/{NAME}@{CHAMPION}")
    flavor = info.flavors["python_function"]
    assert "model_code_path" in flavor  # models from code, no cloudpickled PythonModel
    inputs = {c.name: c.type.name for c in info.signature.inputs.inputs}
    assert inputs == {"eruptions": "double", "waiting": "double"}
    assert not any(c.required for c in info.signature.inputs.inputs)  # gaps are imputed
    outputs = [c.name for c in info.signature.outputs.inputs]
    assert outputs == ["cluster", "distance", "novel"]
    run = mlflow.get_run(reg.run_id)
    assert run.info.status == "FINISHED"
    assert run.inputs.dataset_inputs[0].dataset.digest
    gate = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=reg.run_id, artifact_path="gate.json")
        ).read_text()
    )
    assert gate["promoted"] is True and gate["outcome"] == "first"
    assert gate["metric"].endswith("labeling_score")
    # 15% of faithful's 272 rows were held out of the sweep and scored here
    assert gate["rows"] == len(np.load(swept.holdout_path)) == round(0.15 * 272)
    # the registered pyfunc reproduces the training labels
    # numeric inputs are declared double: integer columns are cast by the caller, like the
    # logged input example shows (MLflow refuses int64 -> float64 as unsafe)
    frame = pd.read_csv(bundled("faithful.csv"))
    served_model = mlflow.pyfunc.load_model(f"models:/{NAME}@{CHAMPION}")
    with pytest.raises(mlflow.exceptions.MlflowException, match="waiting"):
        served_model.predict(frame)
    served = served_model.predict(frame.astype(float))
    # the fitted parts travel as skops files, not pickles
    spec = served_model.unwrap_python_model().model.folder / "spec.json"
    assert set(json.loads(spec.read_text())["formats"].values()) <= {"skops", "none"}
    with_gap = frame.astype(float).head(3).copy()
    with_gap.loc[0, "waiting"] = np.nan
    assert served_model.predict(with_gap)["cluster"].notna().all()
    np.testing.assert_array_equal(
        served["cluster"].to_numpy(), apply_cluster_map(np.load(swept.labels_path), reg.cluster_map)
    )


def test_the_settings_a_model_was_trained_with_are_read_back(mlflow_uri, workspace):
    """What a drift retrain (settings_from) trains with: the model's config, the new data."""
    from clusterflow.errors import ConfigError, RegistryError
    from clusterflow.model_registry import recorded_train_config

    reg, _ = train(bundled("faithful.csv"), workspace, k_max=3, seed=4)
    for uri in (f"models:/{NAME}@{CHAMPION}", f"models:/{NAME}/{reg.model_version}"):
        recorded = recorded_train_config(uri)
        assert recorded["sweep"]["k_max"] == 3 and recorded["random_state"] == 4
    retrain = TrainConfig(
        data="new.csv",
        workspace="elsewhere",
        settings_from=f"models:/{NAME}@{CHAMPION}",
        registry={"replace_incompatible": True},
    ).with_settings_of(recorded)
    assert (retrain.data, retrain.workspace, retrain.settings_from) == (
        "new.csv",
        "elsewhere",
        None,
    )
    assert retrain.sweep.k_max == 3 and retrain.registry.model_name == NAME
    assert retrain.registry.replace_incompatible
    # a config recorded by an older version (a field since removed) still gives its settings
    older = {**recorded, "registry": {**recorded["registry"], "tolerance": 0.02}, "gone": 1}
    assert retrain.with_settings_of(older).registry.model_name == NAME
    with pytest.raises(ConfigError, match="its recorded sweep.k_max"):
        retrain.with_settings_of({**recorded, "sweep": {"k_max": "many"}})
    with pytest.raises(
        RegistryError, match=f"cannot read the training settings of models:/{NAME}@nope"
    ):
        recorded_train_config(f"models:/{NAME}@nope")


def test_worse_challenger_is_not_promoted(mlflow_uri, workspace):
    # A k=6..8 challenger against the k=2 champion, judged out of sample on 40% held out (109
    # rows): k=2 explains held-out rows better by 0.1-0.3 nats per row, which on 109 rows may
    # still be within the noise (a tie). Either way the champion stays.
    first, _ = train(bundled("faithful.csv"), workspace, k_min=2, k_max=4, holdout_share=0.4)
    second, swept = train(bundled("faithful.csv"), workspace, k_min=6, k_max=8, holdout_share=0.4)
    assert first.promoted
    assert not second.promoted and second.gate["outcome"] in {"worse", "tie"}, second.reason
    assert second.previous_champion == "1"
    assert second.champion_score > second.challenger_score
    assert second.gate["interval"][0] < 0 and 0 <= second.gate["agreement_ari"] < 1
    assert "out of sample" in second.gate["metric"]
    assert alias_version(CHAMPION) == "1"
    assert alias_version(CHALLENGER) == "2"
    assert mlflow.get_run(second.run_id).data.tags["clusterflow.promoted"] == "False"

    # a new champion (here over one that cannot read its columns) leaves no stale challenger
    waiting = workspace / "waiting.csv"
    pd.read_csv(bundled("faithful.csv"))[["waiting"]].to_csv(waiting, index=False)
    third, _ = train(waiting, workspace, replace_incompatible=True)
    assert third.promoted and alias_version(CHAMPION) == third.model_version
    with pytest.raises(mlflow.exceptions.MlflowException):
        alias_version(CHALLENGER)

    # a concurrent training moved the champion after this model was gated: the re-check right
    # before the alias move gates again against the new champion
    from dataclasses import replace

    from clusterflow.challenger import regate_if_moved

    MlflowClient().set_registered_model_alias(NAME, CHAMPION, "2")
    better, _ = load_cluster_model(first.model_uri)
    stale = replace(second_decision(second), champion_version="1", cluster_map={0: 0, 1: 1})
    holdout = pd.read_csv(bundled("faithful.csv")).astype(float).iloc[np.load(swept.holdout_path)]
    again = regate_if_moved(
        NAME, stale, better, {"holdout": holdout, "resamples": 50, "random_state": 0}
    )
    assert again.champion_version == "2" and again.promote and again.outcome == "better"
    assert "re-checked" in again.reason and again.cluster_map == {0: 0, 1: 1}


def second_decision(reg):
    """The gate decision a registration recorded, rebuilt from its gate.json record."""
    from clusterflow.gate import GateDecision, Outcome

    record = reg.gate
    return GateDecision(
        record["promote"],
        Outcome(record["outcome"]),
        record["reason"],
        record["challenger_score"],
        record["champion_score"],
        champion_version=record["champion_version"],
    )


def test_failure_before_alias_move_rolls_back(mlflow_uri, workspace, monkeypatch):
    train(bundled("faithful.csv"), workspace)
    from clusterflow import registration

    def crash(*args, **kwargs):
        raise RuntimeError("injected crash before the alias move")

    monkeypatch.setattr(registration, "set_alias", crash)
    with pytest.raises(RuntimeError, match="injected"):
        train(bundled("faithful.csv"), workspace, seed=1)
    client = MlflowClient()
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{NAME}'"))
    assert versions == ["1"]  # the half-registered version 2 was deleted
    assert alias_version(CHAMPION) == "1"
    runs = mlflow.search_runs(experiment_names=["clusterflow"], order_by=["start_time ASC"])
    assert list(runs["status"]) == ["FINISHED", "FAILED"]
    model, _ = load_cluster_model(f"models:/{NAME}@{CHAMPION}")
    assert model.predict(pd.read_csv(bundled("faithful.csv")))["cluster"].nunique() >= 2


@pytest.mark.slow
def test_retrain_on_resample_keeps_cluster_ids(mlflow_uri, workspace, tmp_path):
    frame = pd.read_csv(bundled("faithful.csv")).astype(float)
    first, _ = train(bundled("faithful.csv"), workspace, k_min=2, k_max=2)
    resampled = frame.sample(frac=1.0, replace=True, random_state=7)
    path = tmp_path / "resampled.csv"
    resampled.to_csv(path, index=False)
    # another seed as well: the new clusterer numbers its clusters the other way round
    second, swept = train(path, workspace, k_min=2, k_max=2, seed=7)
    # the same k=2 grouping again: a tie, the champion stays; the ids are aligned all the same
    assert not second.promoted and second.gate["outcome"] == "tie", second.reason
    assert second.cluster_map == {"0": 1, "1": 0}
    old = mlflow.pyfunc.load_model(first.model_uri).predict(frame)["cluster"].to_numpy()
    served = mlflow.pyfunc.load_model(second.model_uri)
    new = served.predict(frame)["cluster"].to_numpy()
    kept = float(np.mean(old == new))
    assert kept >= 0.9, f"only {kept:.1%} of rows kept their cluster id"
    unaligned = served.unwrap_python_model().model
    unaligned.cluster_map = {}
    assert np.mean(old == unaligned.predict(frame)["cluster"].to_numpy()) < 0.1
    assert second.matched_share is not None and second.matched_share >= 0.9
    # the drift reference inside the registered model carries the published ids too
    reference = pd.read_parquet(served.unwrap_python_model().model.folder / "reference.parquet")
    raw = pd.read_parquet(f"{swept.model_dir}/reference.parquet")["__cluster"].to_numpy()
    np.testing.assert_array_equal(
        reference["__cluster"].to_numpy(), apply_cluster_map(raw, second.cluster_map)
    )
    assert (reference["__cluster"].to_numpy() != raw).all()


@pytest.mark.slow
def test_champion_loads_in_a_fresh_process(mlflow_uri, workspace, python):
    train(bundled("faithful.csv"), workspace)
    script = textwrap.dedent(
        f"""
        import mlflow, pandas as pd
        df = pd.read_csv({str(bundled("faithful.csv"))!r}).astype(float)
        out = mlflow.pyfunc.load_model("models:/{NAME}@champion").predict(df)
        print(len(out), sorted(out.columns), out["cluster"].nunique())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"}
    env["MLFLOW_TRACKING_URI"] = mlflow_uri
    done = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("272 ['cluster', 'distance', 'novel']")


@pytest.mark.slow
def test_process_killed_before_alias_move_leaves_champion(mlflow_uri, workspace, python):
    train(bundled("faithful.csv"), workspace)
    script = textwrap.dedent(
        f"""
        import os, pathlib
        from clusterflow import registration
        from tests.clusterflow.test_registry import train

        registration.set_alias = lambda *a, **k: os._exit(9)  # the process dies right there
        train(pathlib.Path({str(bundled("faithful.csv"))!r}), pathlib.Path({str(workspace)!r}),
              seed=1)
        """
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}
    root = str(bundled("faithful.csv").parents[1])
    done = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=root
    )
    assert done.returncode == 9, done.stderr[-2000:]
    client = MlflowClient()
    assert alias_version(CHAMPION) == "1"
    orphan = client.get_model_version(NAME, "2")
    assert orphan.tags["clusterflow.state"] == "pending" and not orphan.aliases
    model, _ = load_cluster_model(f"models:/{NAME}@{CHAMPION}")
    assert len(model.predict(pd.read_csv(bundled("faithful.csv")))) == 272
    # the next registration removes the orphan: one new version, nothing left pending
    rerun, _ = train(bundled("faithful.csv"), workspace, seed=1)
    assert rerun.orphans_removed == ["2"] and rerun.model_version == "3"
    versions = {str(v.version): v for v in client.search_model_versions(f"name='{NAME}'")}
    assert sorted(versions) == ["1", "3"]
    assert all(v.tags["clusterflow.state"] == "complete" for v in versions.values())
    assert mlflow.get_run(orphan.run_id).info.status == "KILLED"


def test_orphans_of_dead_registrations_are_removed_nothing_else(mlflow_uri, workspace):
    """Pending versions: a dead owner's goes, a live owner's and an aliased one stay."""
    import socket
    import sys
    import time

    from clusterflow.model_registry import OWNER_TAG, STATE_TAG, clean_orphans, connect, owner

    connect(workspace)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    client = MlflowClient()
    client.create_registered_model(NAME)

    def version(state: str, who: str) -> str:
        run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
        return str(
            client.create_model_version(
                NAME,
                "file:///nowhere",
                run_id=run.info.run_id,
                tags={STATE_TAG: state, OWNER_TAG: who},
            ).version
        )

    orphan = version("pending", f"{socket.gethostname()}:{dead}")
    live = version("pending", owner())
    moved = version("pending", f"{socket.gethostname()}:{dead}")
    client.set_registered_model_alias(NAME, CHAMPION, moved)  # killed right after the move
    done = version("complete", f"{socket.gethostname()}:{dead}")
    later = int(time.time() * 1000) + 1000
    assert clean_orphans(NAME, before_ms=0) == []  # only versions older than the run
    assert clean_orphans(NAME, before_ms=later) == [orphan]
    left = {str(v.version) for v in client.search_model_versions(f"name='{NAME}'")}
    assert left == {live, moved, done}
    assert client.get_model_version(NAME, moved).tags[STATE_TAG] == "complete"
    assert client.get_model_version(NAME, live).tags[STATE_TAG] == "pending"


def test_the_old_registry_module_reexports_every_public_name():
    import importlib
    import sys

    from clusterflow import model_registry

    sys.modules.pop("clusterflow.registry", None)
    with pytest.warns(DeprecationWarning, match="clusterflow.model_registry"):
        old = importlib.import_module("clusterflow.registry")
    assert sorted(old.__all__) == sorted(model_registry.__all__)
    for name in model_registry.__all__:
        assert getattr(old, name) is getattr(model_registry, name)
