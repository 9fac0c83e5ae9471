"""Monitoring a batch through a real (tabular) champion built by the pipeline stages, no Prefect."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from clusterflow import stages
from clusterflow.config import DriftConfig, TrainConfig
from clusterflow.drift import DriftThresholds
from clusterflow.drift_report import render_html
from clusterflow.errors import ValidationFailed
from clusterflow.model import ClusterModel
from clusterflow.monitoring import monitor_frame, reference_sample, split_batch, top_reasons
from clusterflow.store import StageStore
from tests.conftest import bundled

CHEAP_SWEEP = {"algorithms": ["kmeans"], "k_max": 6, "stability_resamples": 0}


@pytest.fixture(scope="module")
def penguins():
    return pd.read_csv(bundled("penguins.csv"))


@pytest.fixture(scope="module")
def champion(tmp_path_factory, penguins):
    """A champion trained on a seeded random half of penguins; the other half is held out."""
    root = tmp_path_factory.mktemp("monitoring")
    half = penguins.sample(frac=0.5, random_state=1)
    train_path = root / "train.csv"
    half.to_csv(train_path, index=False)
    config = TrainConfig(
        data=str(train_path),
        exclude_columns=["species", "year"],
        workspace=str(root / "ws"),
        sweep=CHEAP_SWEEP,
    )
    store = StageStore(root / "ws")
    snapshot = stages.ingest(train_path, store)
    validated = stages.validate(snapshot, config, store)
    imputed = stages.impute(validated, config, store)
    swept = stages.sweep(validated, imputed, None, config, store)
    held_out = penguins.drop(index=half.index).reset_index(drop=True)
    return ClusterModel.load(swept.model_dir), held_out


def test_thresholds_are_the_config_defined_once():
    # MonitorConfig.drift becomes DriftThresholds field by field: one definition, same defaults.
    assert issubclass(DriftThresholds, DriftConfig)
    assert set(DriftThresholds.model_fields) == set(DriftConfig.model_fields)
    assert DriftThresholds() == DriftThresholds(**DriftConfig().model_dump())


def test_reference_is_the_training_sample(champion):
    model, _ = champion
    ref = reference_sample(model)
    assert len(ref.table) == 172  # every training row (fewer than REFERENCE_ROWS)
    assert list(ref.table.columns) == list(model.roles.features)
    assert not ref.table.isna().any().any()
    assert ref.embeddings is None
    assert set(np.unique(ref.clusters)) <= set(range(6))


def test_held_out_half_does_not_drift(champion):
    model, held_out = champion
    outcome = monitor_frame(model, held_out, DriftThresholds())
    result = outcome.result
    assert result.drift_detected is False, result.reasons
    assert result.reasons == []
    assert set(result.columns) == set(model.roles.features)
    assert result.embedding.method == "none"
    assert result.clusters.psi < 0.2
    assert outcome.rows() == {
        "in": 172,
        "compared": 172,
        "quarantined": 0,
        "quarantined_share": 0.0,
        "training_quarantined_share": 0.0,
        "quarantine_p_value": 1.0,
        "quarantine_drifted": False,
        "reference": 172,
        "top_quarantine_reasons": [],
    }


def test_one_species_drifts_and_names_its_columns(champion):
    model, held_out = champion
    gentoo = held_out[held_out["species"] == "Gentoo"].reset_index(drop=True)
    data = monitor_frame(model, gentoo).to_dict()
    assert data["drift_detected"] is True
    # Gentoo penguins are heavier with longer flippers and live on Biscoe only.
    assert {"body_mass_g", "flipper_length_mm", "island"} <= set(data["drifted_columns"])
    assert data["clusters"]["drifted"] is True
    assert any(r.startswith("column body_mass_g") for r in data["reasons"])


def test_bad_rows_are_quarantined_and_counted_not_compared(champion):
    model, held_out = champion
    batch = held_out.copy()
    batch["body_mass_g"] = batch["body_mass_g"].astype(object)
    batch.loc[3, "body_mass_g"] = "heavy"
    batch.loc[[5, 6], model.roles.features] = np.nan  # nothing left to cluster on
    outcome = monitor_frame(model, batch)
    rows = outcome.rows()
    assert rows["in"] == 172 and rows["quarantined"] == 3 and rows["compared"] == 169
    assert rows["in"] == rows["compared"] + rows["quarantined"]
    assert sorted(outcome.quarantine.index) == [3, 5, 6]
    assert outcome.quarantine.loc[3, "reason"] == "column body_mass_g: 'heavy' is not a number"
    assert outcome.quarantine.loc[3, "body_mass_g"] == "heavy"  # kept as it came
    assert rows["top_quarantine_reasons"] == [
        {"reason": "every feature column and the text are empty", "rows": 2, "example": None},
        {"reason": "body_mass_g: not a number", "rows": 1, "example": "'heavy'"},
    ]
    compared = batch.drop(index=[3, 5, 6])
    # n counts the batch's rows, gaps filled as the reference's are.
    assert outcome.result.columns["body_mass_g"].batch.n == len(compared)
    assert outcome.to_dict()["rows"]["quarantined"] == 3
    assert rows["quarantine_drifted"] is False  # 3 of 172 (1.7%): within the allowed rise
    assert rows["training_quarantined_share"] == model.quarantined_share < 0.02


def test_a_batch_where_half_the_rows_fail_validation_drifted(champion):
    """A column written with its unit ("4050 g") sent half the rows to the quarantine, and the
    half left was compared alone: "no drift (86 rows compared, 86 quarantined)"."""
    model, held_out = champion
    batch = held_out.copy()
    batch["body_mass_g"] = batch["body_mass_g"].astype(object)
    half = batch.index[::2]
    batch.loc[half, "body_mass_g"] = [f"{v:.0f} g" for v in held_out.loc[half, "body_mass_g"]]
    outcome = monitor_frame(model, batch)
    rows = outcome.rows()
    assert rows["quarantined"] >= 86 and rows["quarantine_drifted"] is True
    assert rows["quarantine_p_value"] < 1e-6
    assert outcome.result.drift_detected
    assert any("of the batch's rows failed validation" in r for r in outcome.result.reasons)


def test_batch_failures_are_typed(champion):
    model, held_out = champion
    with pytest.raises(ValidationFailed, match="no rows"):
        split_batch(model, held_out.iloc[:0])
    with pytest.raises(ValidationFailed, match=r"column\(s\) \['island'\].*missing"):
        split_batch(model, held_out.drop(columns=["island"]))
    empty = held_out.copy()
    empty[list(model.roles.features)] = np.nan
    with pytest.raises(ValidationFailed, match="every row failed validation"):
        monitor_frame(model, empty)


def test_a_model_without_reference_is_refused(champion):
    model, held_out = champion
    bare = ClusterModel(
        roles=model.roles,
        imputer=model.imputer,
        features=model.features,
        clusterer=model.clusterer,
        embedder=None,
    )
    with pytest.raises(ValidationFailed, match="no reference sample"):
        monitor_frame(bare, held_out)


def test_a_batch_without_the_id_column_is_still_compared():

    import numpy as np
    import pandas as pd

    from clusterflow.monitoring import split_batch
    from clusterflow.schema import ColumnRoles

    class Model:
        roles = ColumnRoles(id_column="key", text_column=None, numeric=("x",), categorical=())

        def check_columns(self, frame, source="input"):
            assert "x" in frame

    batch = pd.DataFrame({"x": [1.0, np.inf, 3.0]})
    valid, quarantine = split_batch(Model(), batch)
    assert len(valid) == 2 and quarantine["reason"].tolist() == ["column x: inf is infinite"]
    assert dataclasses.is_dataclass(Model.roles)


def test_the_training_blank_share_is_recorded_with_the_model(champion, penguins):
    model, _ = champion
    assert set(model.missing_shares) == set(model.roles.features)
    # penguins has a few blank sexes; the stored share is that of the valid training rows.
    assert 0.0 < model.missing_shares["sex"] < 0.1
    assert model.missing_shares["body_mass_g"] == 0.0  # its blanks are in rows quarantined


@pytest.mark.parametrize("every", [1, 2])
def test_a_feature_blank_in_the_batch_drifts(champion, every):
    model, held_out = champion
    batch = held_out.copy()
    batch.loc[batch.index % every == 0, "flipper_length_mm"] = np.nan
    valid, _ = split_batch(model, batch)
    observed = int(valid["flipper_length_mm"].notna().sum())
    assert observed == (0 if every == 1 else 85)
    data = monitor_frame(model, batch).to_dict()
    column = data["columns"]["flipper_length_mm"]
    assert column["batch"]["n"] == len(valid)  # gaps filled, as the reference's are
    assert column["missing"]["batch_missing"] == len(valid) - observed
    assert column["missing"]["drifted"] is True and column["drifted"] is True
    assert data["drift_detected"] is True and "flipper_length_mm" in data["drifted_columns"]


def test_a_model_saved_before_the_blank_share_was_recorded_still_monitors(champion, tmp_path):
    model, held_out = champion
    folder = tmp_path / "old"
    model.save(folder)
    spec = json.loads((folder / "spec.json").read_text())
    del spec["missing_shares"]
    (folder / "spec.json").write_text(json.dumps(spec))
    for name in ("reference.parquet",):
        (folder / name).write_bytes((model.folder / name).read_bytes())
    loaded = ClusterModel.load(folder)
    assert loaded.missing_shares is None
    batch = held_out.assign(body_mass_g=np.nan)
    data = monitor_frame(loaded, batch).to_dict()
    missing = data["columns"]["body_mass_g"]["missing"]
    assert missing["reference_share"] is None and "did not record" in missing["note"]


def test_quarantine_reasons_group_by_column_and_problem_not_by_value():
    # A column written with its unit: every value differs, the problem is one.
    reasons = [
        f"column body_mass_g: '{3000 + 50 * (i % 30)} g' is not a number" for i in range(172)
    ]
    reasons += ["column sex is empty; column flipper_length_mm: 'long' is not a number"] * 3
    reasons += ["column body_mass_g: '1 kg' is not a number; column x: inf is infinite"]
    top = top_reasons(reasons)
    assert top[0] == {"reason": "body_mass_g: not a number", "rows": 173, "example": "'3000 g'"}
    assert {"reason": "sex: empty", "rows": 3, "example": None} in top
    assert {"reason": "x: infinite", "rows": 1, "example": "inf"} in top
    assert len(top) == 4


def test_the_report_shows_grouped_reasons_with_an_example(champion):
    model, held_out = champion
    batch = held_out.copy()
    batch["body_mass_g"] = [
        f"{v:.0f} g" if i % 2 else v for i, v in enumerate(batch["body_mass_g"])
    ]
    outcome = monitor_frame(model, batch)
    (first, *_) = outcome.rows()["top_quarantine_reasons"]
    assert first["reason"] == "body_mass_g: not a number" and first["rows"] >= 80
    assert first["example"].endswith(" g'")
    html = render_html(outcome.result, rows=outcome.rows())
    assert "body_mass_g: not a number (" in html and "e.g. &#x27;" in html
