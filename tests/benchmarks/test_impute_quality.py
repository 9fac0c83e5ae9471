"""The imputation benchmark's ``--sklearn-from`` mode, on a tiny real run."""

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
def earlier(table, tmp_path_factory) -> pd.DataFrame:
    """A full run's records, marked, written and read back as ``--csv`` and ``main`` do."""
    frame, numeric, categorical = table
    records = pd.DataFrame(run_case("tiny", frame, numeric, categorical, "mcar", 0))
    sk = records["method"].str.startswith("sk_")
    # Marks no run computes: which records were taken over and which were run again.
    records.loc[sk, "seconds"] = np.arange(1000, 1000 + sk.sum())
    records.loc[~sk, "rmse"] = -1.0
    path = tmp_path_factory.mktemp("earlier") / "results.csv"
    records.to_csv(path, index=False)
    return pd.read_csv(path)


def test_sklearn_records_are_taken_over_and_ours_run_again(table, earlier):
    frame, numeric, categorical = table
    again = pd.DataFrame(
        run_case("tiny", frame, numeric, categorical, "mcar", 0, sklearn_from=earlier)
    )
    assert sorted(again["method"]) == sorted(earlier["method"])
    sk = again["method"].str.startswith("sk_")
    # Each scikit-learn record once, with its marked time; every method of ours computed anew.
    assert sorted(again.loc[sk, "seconds"]) == list(range(1000, 1000 + sk.sum()))
    assert (again.loc[~sk, "rmse"] > 0).all()
    row = summarise(again).iloc[0]
    best = again.loc[sk, "rmse"].min()
    assert row["best_sk_rmse"] == best and row["auto_rmse"] > 0 and row["chosen_s"] > 0


def test_a_missing_or_repeated_case_is_refused(table, earlier):
    frame, numeric, categorical = table
    with pytest.raises(SystemExit, match="no scikit-learn records of tiny mcar seed=1"):
        run_case("tiny", frame, numeric, categorical, "mcar", 1, sklearn_from=earlier)
    twice = pd.concat([earlier, earlier], ignore_index=True)
    with pytest.raises(SystemExit, match="more than once"):
        run_case("tiny", frame, numeric, categorical, "mcar", 0, sklearn_from=twice)
