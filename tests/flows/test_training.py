"""The training flow end to end under a real (temporary) Prefect server and a real MLflow store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from clusterflow.config import TrainConfig
from clusterflow.errors import ConfigError, InputError
from clusterflow_orchestration.flows.training import training_flow
from tests.conftest import bundled, shared

CHEAP_SWEEP = {"algorithms": ["kmeans", "gmm"], "k_max": 5, "stability_resamples": 0}


def contract_files(out):
    assignments = pd.read_csv(out / "assignments.csv")
    quarantine = pd.read_csv(out / "quarantine.csv")
    summary = json.loads((out / "summary.json").read_text())
    return assignments, quarantine, summary


@pytest.fixture
def demo_sample(tmp_path):
    frame = pd.read_csv(bundled("birds_demo.csv")).head(300).copy()
    frame["speed"] = frame["speed"].astype(object)
    frame.loc[5, "speed"] = "fast"  # a non-number in a numeric column: quarantined
    frame.loc[7, "record_id"] = frame.loc[6, "record_id"]  # a duplicated id: quarantined
    path = tmp_path / "demo.csv"
    frame.to_csv(path, index=False)
    return path


def test_demo_sample_end_to_end(prefect_harness, mlflow_uri, workspace, tmp_path, demo_sample):
    out = tmp_path / "run"
    config = TrainConfig(
        data=str(demo_sample),
        text_column="remarks",
        id_column="record_id",
        out_dir=str(out),
        workspace=str(workspace),
        sweep=CHEAP_SWEEP,
    )
    summary = training_flow(config=config)
    assignments, quarantine, on_disk = contract_files(out)
    assert on_disk == json.loads(json.dumps(summary, default=str))
    assert summary["rows_in"] == 300
    assert summary["rows_clustered"] + summary["rows_quarantined"] == 300
    assert summary["rows_quarantined"] == 2
    assert list(assignments.columns) == ["record_id", "cluster"]
    assert len(assignments) == 298 and assignments["record_id"].is_unique
    assert set(quarantine["reason"]) == {
        "column speed: 'fast' is not a number",
        f"column record_id: {pd.read_csv(demo_sample)['record_id'][7]!r} repeats an earlier id",
    }
    assert quarantine.columns[-1] == "reason" and len(quarantine.columns) == 19
    assert summary["promoted"] is True and summary["model_version"] == "1"
    assert summary["model_uri"] == "models:/clusterflow/1"
    assert summary["k"] == assignments["cluster"].nunique()
    assert {"silhouette", "davies_bouldin", "calinski_harabasz"} <= set(summary["metrics"])
    assert (out / "artifacts" / "sweep.csv").exists()

    # A rerun on the same data and settings reuses every finished stage.
    again = training_flow(config=config.model_copy(update={"out_dir": str(tmp_path / "run2")}))
    assert set(again["stages_reused"]) == {"ingest", "validate", "impute", "embed", "sweep"}
    assert pd.read_csv(tmp_path / "run2" / "assignments.csv").equals(assignments)
    assert again["model_version"] == "2"


def _penguins_config(folder) -> TrainConfig:
    return TrainConfig(
        data=str(bundled("penguins.csv")),
        exclude_columns=("species", "year"),
        out_dir=str(folder / "out"),
        workspace=str(folder / "ws"),
    )


@pytest.fixture(scope="module")
def penguins_run(prefect_harness, tmp_path_factory):
    """One default training on penguins, unregistered: its summary and output folder."""
    folder = tmp_path_factory.mktemp("penguins")
    summary = training_flow(config=_penguins_config(folder), register_model=False)
    return summary, folder / "out"


def test_penguins_contract_and_quality(penguins_run):
    summary, out = penguins_run
    assignments, quarantine, _ = contract_files(out)
    assert summary["rows_in"] == 344 == summary["rows_clustered"] + summary["rows_quarantined"]
    assert list(assignments.columns) == ["row", "cluster"]
    assert quarantine.empty and "reason" in quarantine.columns
    truth = pd.read_csv(bundled("penguins.csv"))["species"]
    assert adjusted_rand_score(truth.iloc[assignments["row"]], assignments["cluster"]) >= 0.85
    assert summary["model_uri"] is None and summary["promoted"] is False
    # Runner-ups: a coarser and a finer alternative with their evidence (issue 11).
    roles = {r["role"]: r for r in summary["runner_ups"]}
    assert set(roles) == {"coarser", "finer"}
    assert roles["coarser"]["k"] < summary["k"] < roles["finer"]["k"]
    assert all(isinstance(r["evidence"], float) for r in roles.values())


def test_pinned_k_chooses_only_the_algorithm(prefect_harness, workspace, tmp_path):
    out = tmp_path / "pinned"
    config = TrainConfig(
        data=str(bundled("faithful.csv")),
        out_dir=str(out),
        workspace=str(workspace),
        sweep={"k": 4, "k_min": 2, "k_max": 8},
    )
    summary = training_flow(config=config, register_model=False)
    assignments, _, _ = contract_files(out)
    assert summary["k"] == 4 == assignments["cluster"].nunique()
    assert "pinned to 4" in summary["selection_rule"]


def test_user_errors_surface_as_typed_errors(prefect_harness, workspace, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        training_flow(
            config=TrainConfig(data=str(tmp_path / "nope.csv"), workspace=str(workspace)),
            register_model=False,
        )
    with pytest.raises(ConfigError, match="--text-column 'nope'"):
        training_flow(
            config=TrainConfig(
                data=str(bundled("faithful.csv")), text_column="nope", workspace=str(workspace)
            ),
            register_model=False,
        )


def test_stackoverflow_sample_quality(prefect_harness, workspace, tmp_path):
    frame = pd.read_csv(shared("stackoverflow_titles.csv"))
    # 50 titles of each of the 20 tags: a third of the time of 150 each (16-26 s against 48 s on
    # a 2-core AMD EPYC); the full 20,000 are checked under -m slow.
    sample = frame.groupby("label", group_keys=False).sample(n=50, random_state=0)
    path = tmp_path / "so.csv"
    sample.to_csv(path, index=False)
    out = tmp_path / "so"
    config = TrainConfig(
        data=str(path),
        text_column="text",
        exclude_columns=("label", "label_name"),
        out_dir=str(out),
        workspace=str(workspace),
    )
    summary = training_flow(config=config, register_model=False)
    assert summary["imputer"] == "none"  # text only: nothing to impute (it said "auto")
    assignments = pd.read_csv(out / "assignments.csv")
    truth = sample["label"].to_numpy()[assignments["row"]]
    # issue 2 asks for > 0.3; measured 0.553 here (0.532 with the sample's seed 1; 150 per tag:
    # 0.570 and 0.584; KMeans told the true k=20: 0.566 on the full set)
    assert adjusted_rand_score(truth, assignments["cluster"]) >= 0.5


def _known_miss(name: str, label: str, exclude: tuple, target: float, measured: str):
    """A full-size text set whose ARI is just under its target (issue 11, non-strict xfail)."""
    why = f"known miss, issue 11: measured ARI {measured} against {target}"
    return pytest.param(
        name, "text", label, exclude, target, marks=pytest.mark.xfail(strict=False, reason=why)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "text", "label", "exclude", "target"),
    [
        # targets: the ARI before issue 11's rule (0.576, 0.509), which beat KMeans told the
        # true k on the same MiniLM embeddings (0.566, 0.482; issue 3): never worse than that
        # measured: Intel (bf16 embedder) / AMD EPYC (fp32 embedder); README, Table 1's notes
        _known_miss(
            "stackoverflow_titles.csv", "label", ("label", "label_name"), 0.576, "0.558 / 0.595"
        ),
        _known_miss("banking77.csv", "category", ("category", "split"), 0.509, "0.506 / 0.503"),
    ],
)
@pytest.mark.timeout(3600)  # 20,000 titles or 13,000 queries embedded on a shared 2-core machine
def test_full_text_sets_beat_kmeans_told_the_true_k(
    prefect_harness, workspace, tmp_path, name, text, label, exclude, target
):
    out = tmp_path / "out"
    config = TrainConfig(
        data=str(shared(name)),
        text_column=text,
        exclude_columns=exclude,
        out_dir=str(out),
        workspace=str(workspace),
    )
    summary = training_flow(config=config, register_model=False)
    assignments = pd.read_csv(out / "assignments.csv")
    truth = pd.read_csv(shared(name))[label].to_numpy()[assignments["row"]]
    ari = adjusted_rand_score(truth, assignments["cluster"])
    print(f"{name}: {summary['algorithm']} k={summary['k']} ARI {ari:.3f} (target {target})")
    assert ari >= target
    assert (assignments["cluster"] == -1).mean() < 0.10
    assert summary["rows_clustered"] == len(truth)


def test_same_data_and_settings_give_the_same_clusters(penguins_run, tmp_path):
    # A second fresh workspace: nothing is reused, everything is recomputed from the seed.
    first, first_out = penguins_run
    summary = training_flow(config=_penguins_config(tmp_path), register_model=False)
    assert first["stages_reused"] == summary["stages_reused"] == []
    again = pd.read_csv(tmp_path / "out" / "assignments.csv")
    assert again.equals(pd.read_csv(first_out / "assignments.csv"))
    assert again["cluster"].nunique() >= 2
