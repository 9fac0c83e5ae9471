"""The gate artifact the register task publishes states the gate's whole evidence."""

from __future__ import annotations

from clusterflow.registration import Registration
from clusterflow_orchestration.tasks.register import gate_markdown


def test_gate_markdown_states_scores_interval_agreement_and_rows():
    reg = Registration(
        run_id="r",
        model_uri="models:/m/2",
        model_version="2",
        promoted=False,
        reason="a tie",
        challenger_score=0.41,
        champion_score=0.40,
        previous_champion="1",
        tracking_uri="sqlite:///x",
        cluster_map={"0": 1, "1": 0},
        matched_share=0.97,
        gate_metric="clusterflow.gate.provisional_labeling_score",
        gate={
            "outcome": "tie",
            "difference": 0.01,
            "interval": [-0.02, 0.04],
            "agreement_ari": 0.93,
            "rows": 52,
            "resamples": 200,
        },
    )
    text = gate_markdown(reg)
    assert "challenger 0.4100, champion 0.4000 (version 1)" in text
    assert "[-0.0200, +0.0400]" in text and "200 bootstrap resamples" in text
    assert "52 held out" in text and "(ARI): 0.9300" in text
    assert "outcome: **tie**" in text and "0 -> 1, 1 -> 0" in text
