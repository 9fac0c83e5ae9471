"""The champion gate on real data (penguins, issue 11's acceptance), through real MLflow registries.

Slow: each check trains two models with the default sweep. The stage store is shared by the
module (the default k=3 sweep is computed once); every test has its own registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.registration import Registration, register_training
from clusterflow.store import StageStore
from tests.conftest import shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StageStore:
    return StageStore(tmp_path_factory.mktemp("penguin-stages"))


def train(store: StageStore, workspace: Path, *, seed: int = 0, **sweep) -> Registration:
    config = TrainConfig(
        data=str(shared("penguins.csv")),
        exclude_columns=("species", "year"),
        workspace=str(workspace),
        random_state=seed,
        sweep=sweep,
        registry={"model_name": "penguins"},
    )
    snap = stages.ingest(config.data, store)
    val = stages.validate(snap, config, store)
    imp = stages.impute(val, config, store)
    swept = stages.sweep(val, imp, None, config, store)
    reg = register_training(
        config=config, snapshot=snap, validated=val, imputed=imp, embedded=None, swept=swept
    )
    print(
        f"penguins seed={seed} {sweep or 'default'}: k={swept.k} -> v{reg.model_version} "
        f"{reg.gate.get('outcome')} promoted={reg.promoted}: {reg.reason}"
    )
    return reg


def test_a_k9_challenger_is_not_promoted_over_the_k3_champion(store, mlflow_uri, workspace):
    champion = train(store, workspace)
    assert champion.promoted
    challenger = train(store, workspace, k_min=9, k_max=10)
    assert not challenger.promoted, challenger.reason
    assert challenger.gate["outcome"] in {"worse", "tie"}
    assert challenger.gate["rows"] == round(0.15 * 344)


def test_a_seed_1_retrain_moves_the_champion_only_beyond_the_noise(store, mlflow_uri, workspace):
    train(store, workspace)
    again = train(store, workspace, seed=1)
    low, high = again.gate["interval"]
    # Promoted exactly when the whole interval is above zero. Measured (two starts per mixture,
    # six refits per candidate): seeds 0 and 1 both choose k=3, a tie on 52 held-out rows
    # (interval [-0.18, +0.06]), so no churn. (With one start per mixture seed 1 chose k=2, also
    # a tie; scored in sample, the BIC penalty per row on 52 rows had preferred k=2 and
    # promoted it.)
    assert again.promoted == (low > 0), again.reason
    assert again.gate["outcome"] in {"tie", "worse", "better"}
    assert "out of sample" in again.gate["metric"]


def test_a_champion_forced_to_k9_is_replaced_by_a_default_retrain(store, mlflow_uri, workspace):
    forced = train(store, workspace, k_min=9, k_max=10)
    assert forced.promoted
    default = train(store, workspace)
    assert default.promoted and default.gate["outcome"] == "better", default.reason
