"""The auto choice: the simplest candidate stays unless a more complex one wins beyond the noise."""

import numpy as np
import pandas as pd
import pytest

from clusterflow.impute import CANDIDATES, TableImputer
from clusterflow.impute._selection import promote


def _errors(point: dict[str, float], spread: float = 0.0, seed: int = 0) -> dict:
    """Bootstrap draws around each candidate's error; the shared part makes them paired."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(scale=0.05, size=1000)
    own = {m: rng.normal(scale=spread, size=1000) for m in CANDIDATES}
    return {m: (point[m], point[m] + shared + own[m]) for m in CANDIDATES}


def test_candidates_run_from_the_simplest_to_the_most_complex() -> None:
    assert CANDIDATES == ("mean", "median", "most_frequent", "iterative", "knn", "forest")


def test_an_exact_tie_keeps_the_simplest() -> None:
    assert promote(_errors(dict.fromkeys(CANDIDATES, 0.8))) == "mean"


def test_a_win_within_the_noise_keeps_the_simpler_one() -> None:
    point = {**dict.fromkeys(CANDIDATES, 0.8), "iterative": 0.6, "forest": 0.59}
    # Forest is 0.01 better than iterative, but its own draws vary by 0.05: not beyond the noise.
    assert promote(_errors(point, spread=0.05)) == "iterative"


def test_a_win_beyond_the_noise_is_promoted() -> None:
    point = {**dict.fromkeys(CANDIDATES, 0.8), "iterative": 0.3, "forest": 0.2}
    assert promote(_errors(point, spread=0.02)) == "forest"
    # A margin larger than the win (0.4 x 0.3 > 0.1) keeps the simpler candidate.
    assert promote(_errors(point, spread=0.02), margin=0.4) == "iterative"


def test_a_lower_level_promotes_smaller_wins() -> None:
    point = {**dict.fromkeys(CANDIDATES, 0.8), "knn": 0.75}
    errors = _errors(point, spread=0.04)
    assert promote(errors, level=0.99) == "mean"
    assert promote(errors, level=0.0) == "knn"


def test_auto_promotes_a_model_that_wins_beyond_the_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x, "y": 2.0 * x + 0.1 * rng.normal(size=200)})
    frame.loc[::10, "y"] = np.nan
    imputer = TableImputer(random_state=0).fit(frame)
    assert imputer.method_ == "iterative"
    scores = imputer.scores_.set_index("method")["numeric_rmse"]
    assert scores["iterative"] < 0.5 * scores["mean"]


def test_auto_keeps_the_mean_when_no_candidate_beats_it_beyond_the_noise() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    frame.loc[::7, "a"] = np.nan
    imputer = TableImputer(random_state=0).fit(frame)
    # Independent columns: the models only refit noise, whichever scores lowest on the masks.
    assert imputer.method_ == "mean"
    assert imputer.categorical_method_ == "mean"


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_is_deterministic_for_a_seed(seed: int) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    frame["b"] += frame["a"]
    frame.loc[::5, "b"] = np.nan
    first = TableImputer(random_state=seed).fit(frame)
    second = TableImputer(random_state=seed).fit(frame)
    assert first.method_ == second.method_
