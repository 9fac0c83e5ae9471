import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clusterflow.missingness import little_mcar_test, plot_missingness, profile_missingness


@pytest.fixture
def tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [1.0, np.nan, 3.0, np.nan, 5.0],
            "b": [np.nan, 2.0, 3.0, np.nan, 5.0],
            "c": ["x", "y", None, None, "z"],
            "d": [1, 2, 3, 4, 5],
        }
    )


def correlated(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, 1)) + 0.6 * rng.normal(size=(rows, 4))
    return pd.DataFrame(values, columns=["a", "b", "c", "d"])


def test_counts_shares_and_patterns_on_a_tiny_frame(tiny: pd.DataFrame) -> None:
    profile = profile_missingness(tiny)
    assert profile.n_rows == 5
    per_column = profile.columns.set_index("column")
    assert per_column["missing"].to_dict() == {"a": 2, "b": 2, "c": 2, "d": 0}
    assert per_column.loc["a", "share"] == pytest.approx(0.4)
    patterns = profile.patterns.set_index("pattern")["count"].to_dict()
    assert patterns == {"(complete)": 1, "a": 1, "b": 1, "c": 1, "a, b, c": 1}
    assert profile.patterns["count"].sum() == 5
    # Ties in count list the patterns with fewer missing columns first.
    assert profile.patterns.iloc[0]["pattern"] == "(complete)"
    assert profile.patterns.iloc[-1]["pattern"] == "a, b, c"
    # d never misses, so it has no missingness correlation; a and b miss together once of two.
    assert list(profile.co_missing.columns) == ["a", "b", "c"]
    assert profile.co_missing.loc["a", "a"] == pytest.approx(1.0)
    assert profile.co_missing.loc["a", "b"] == pytest.approx(1 / 6)


def test_to_dict_is_json_safe_and_markdown_names_the_columns(tiny: pd.DataFrame) -> None:
    profile = profile_missingness(tiny)
    payload = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
    assert payload["columns"][0] == {"column": "a", "missing": 2, "share": 0.4}
    assert payload["mcar"]["test"] == "Little's MCAR test"
    text = profile.to_markdown()
    assert "| a | 2 | 40.0% |" in text
    assert "Little's MCAR test" in text


def test_mcar_p_value_is_high_for_mcar_gaps() -> None:
    # One seeded frame could land in the 5% tail by chance, so check the p-values of twenty:
    # under MCAR they are roughly uniform (the test is known to be a little liberal with many
    # small patterns).
    p_values = []
    for seed in range(20):
        frame = correlated(500, seed=seed)
        rng = np.random.default_rng(seed)
        result = little_mcar_test(frame.mask(rng.random(frame.shape) < 0.15))
        assert result["dof"] > 0
        p_values.append(result["p_value"])
    assert np.median(p_values) > 0.3
    assert np.mean(np.asarray(p_values) < 0.05) <= 0.15


def test_mcar_p_value_is_low_for_mar_and_mnar_gaps() -> None:
    frame = correlated(1000, seed=1)
    mar = frame.copy()
    mar.loc[frame["a"] > 0.5, "b"] = np.nan  # b missing when a is large
    mnar = frame.copy()
    mnar.loc[frame["b"] > 0.8, "b"] = np.nan  # b missing when b itself is large
    for gappy in (mar, mnar):
        result = little_mcar_test(gappy)
        assert result["p_value"] < 1e-6
        assert result["dof"] == 3  # two patterns: complete (4) and without b (3), minus 4
        assert "not missing completely at random" in result["verdict"]


def test_mcar_test_subsamples_large_frames_and_handles_no_gaps() -> None:
    frame = correlated(3000, seed=2)
    frame.loc[::7, "c"] = np.nan
    assert little_mcar_test(frame, max_rows=1000)["rows_used"] == 1000
    complete = little_mcar_test(correlated(50, seed=3))
    assert np.isnan(complete["p_value"]) and "not applicable" in complete["verdict"]


def test_plot_missingness_writes_a_png(tmp_path: Path, tiny: pd.DataFrame) -> None:
    path = plot_missingness(tiny, tmp_path / "plots" / "missing.png")
    assert path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_of_edge_frames_is_json_safe() -> None:
    frames = [
        pd.DataFrame({"a": ["x", None]}),
        pd.DataFrame({"a": [], "b": []}),
        pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [np.nan, np.nan, np.nan]}),
    ]
    for frame in frames:
        profile = profile_missingness(frame)
        json.dumps(profile.to_dict(), allow_nan=False)
        assert "not applicable" in profile.mcar["verdict"]
        assert profile.columns["missing"].sum() == frame.isna().sum().sum()
