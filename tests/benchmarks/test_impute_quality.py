"""The imputation benchmark's ``--auto-only --reference`` mode, on a tiny real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.impute_quality import run_case, summarise


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=80)
    frame = pd.DataFrame(
        {
            "a": latent + 0.3 * rng.normal(size=80),
            "b": 2 * latent + 0.3 * rng.normal(size=80),
            "c": rng.normal(size=80),
            "kind": np.where(latent > 0, "high", "low"),
        }
    )
    return frame, ["a", "b", "c"], ["kind"]


@pytest.fixture(scope="module")
def full_run(table) -> pd.DataFrame:
    frame, numeric, categorical = table
    return pd.DataFrame(run_case("tiny", frame, numeric, categorical, "mcar", 0))


def test_auto_only_reruns_auto_and_takes_the_rest_from_the_reference(table, full_run):
    frame, numeric, categorical = table
    again = pd.DataFrame(
        run_case("tiny", frame, numeric, categorical, "mcar", 0, reference=full_run)
    )
    assert sorted(again["method"]) == sorted(full_run["method"])
    others = again[again["method"] != "auto"].set_index("method")
    assert others["rmse"].equals(full_run[full_run["method"] != "auto"].set_index("method")["rmse"])
    # auto ran again, seeded: the same cells get the same fills
    fresh, before = (r.loc[r["method"] == "auto"].iloc[0] for r in (again, full_run))
    assert fresh["rmse"] == pytest.approx(before["rmse"]) and fresh["chosen"] == before["chosen"]
    row = summarise(again).iloc[0]
    assert row["ratio"] == pytest.approx(fresh["rmse"] / row["best_sk_rmse"])


def test_a_reference_without_the_case_is_refused(table, full_run):
    frame, numeric, categorical = table
    with pytest.raises(SystemExit, match="no records of tiny mcar seed=1"):
        run_case("tiny", frame, numeric, categorical, "mcar", 1, reference=full_run)
