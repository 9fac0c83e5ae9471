import numpy as np
import pandas as pd
import pytest

from clusterflow.errors import ConfigError, ValidationFailed
from clusterflow.schema import ROW_ID, infer_roles, validate_records


def messy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(12)] + ["r3"],
            "x": ["1", "2.5", "abc", None, "inf", "3", "4", "5", "6", "7", "8", "9", "10"],
            "c": ["a", "b", None, None, "b", "a", "a", "b", "b", "a", "a", "b", "a"],
            "t": ["hi", None, "x", " ", "y", "z", "q", "w", "e", "r", "a", "b", "c"],
            "const": [1] * 13,
            "empty": [None] * 13,
            "when": pd.date_range("2020-01-01", periods=13).astype(str),
        }
    )


def test_roles_from_values_and_options():
    roles = infer_roles(messy(), text_column="t", id_column="id")
    assert roles.numeric == ("x",)
    assert roles.categorical == ("c",)
    assert roles.text_column == "t"
    assert set(roles.excluded) == {"const", "empty", "when"}
    assert "constant" in roles.excluded["const"]
    assert "timestamp" in roles.excluded["when"]
    assert roles.id_name == "id"
    assert infer_roles(messy().drop(columns="id")).id_name == ROW_ID


def test_high_cardinality_text_is_not_a_category():
    frame = pd.DataFrame({"name": [f"n{i}" for i in range(100)], "v": np.arange(100.0)})
    roles = infer_roles(frame, max_categories=30)
    assert "name" in roles.excluded and roles.numeric == ("v",)


def test_unknown_columns_are_config_errors():
    with pytest.raises(ConfigError, match="--text-column 'nope'"):
        infer_roles(messy(), text_column="nope")
    with pytest.raises(ConfigError, match="--exclude-columns 'zzz'"):
        infer_roles(messy(), exclude_columns=("zzz",))


def test_every_failure_is_reported_with_its_row():
    frame = messy()
    roles = infer_roles(frame, text_column="t", id_column="id")
    outcome = validate_records(frame, roles)
    assert outcome.reasons == {
        2: "column x: 'abc' is not a number",
        3: "every feature column and the text are empty",
        4: "column x: inf is infinite",
        12: "column id: 'r3' repeats an earlier id",
    }
    assert len(outcome.valid) + len(outcome.quarantined_rows) == len(frame)
    assert outcome.valid["x"].dtype == float
    assert frame["x"].iloc[0] == "1"  # the input is not mutated


def test_a_row_with_several_problems_gets_every_reason():
    frame = pd.DataFrame({"id": [1, 1, 2], "x": [1.0, np.inf, 2.0], "y": [1.0, 2.0, 3.0]})
    roles = infer_roles(frame, id_column="id")
    outcome = validate_records(frame, roles)
    assert outcome.reasons[1] == "column x: inf is infinite; column id: 1 repeats an earlier id"


def test_nullable_and_categorical_columns_with_gaps_validate():
    """Parquet keeps pandas' nullable boolean and categorical types; their gaps stay gaps."""
    frame = pd.DataFrame(
        {
            "x": np.arange(12.0),
            "flag": pd.array([True, False, None] * 4, dtype="boolean"),
            "kind": pd.Categorical(["a", "b", None, "a"] * 3),
            "count": pd.array([1, None, 3, 4] * 3, dtype="Int64"),
        }
    )
    roles = infer_roles(frame)
    assert set(roles.categorical) == {"flag", "kind"} and set(roles.numeric) == {"x", "count"}
    valid = validate_records(frame, roles).valid
    assert len(valid) == 12
    assert valid["flag"].tolist()[:2] == ["True", "False"] and pd.isna(valid["flag"].iloc[2])
    assert valid["kind"].tolist()[:2] == ["a", "b"] and pd.isna(valid["kind"].iloc[2])
    assert valid["count"].isna().sum() == 3 and valid["count"].dtype == float


def test_a_column_of_numbers_with_many_markers_says_so():
    values = [str(v) for v in range(85)] + ["?"] * 10 + ["n/a-ish"] * 5
    frame = pd.DataFrame({"x": np.arange(100.0), "count": values})
    reason = infer_roles(frame).excluded["count"]
    assert reason.startswith("mostly numbers, but 15% of its values are not (e.g. '?', 'n/a-ish')")
    assert "blank out those values" in reason


def test_nothing_valid_is_an_error():
    frame = pd.DataFrame({"x": ["inf", "-inf", "inf"], "y": [None, None, None]})
    roles = infer_roles(frame)
    with pytest.raises(ValidationFailed, match="every row failed validation"):
        validate_records(frame, roles)


def test_no_feature_at_all():
    frame = pd.DataFrame({"only": [1, 1, 1]})
    with pytest.raises(ValidationFailed, match="no usable feature"):
        infer_roles(frame)


def test_mostly_empty_columns_are_excluded_with_the_reason():
    frame = pd.DataFrame({"x": np.arange(10.0), "sparse": [1.0, 2.0, 3.0] + [None] * 7})
    roles = infer_roles(frame, max_missing=0.5)
    assert roles.numeric == ("x",)
    assert roles.excluded["sparse"].startswith("70% missing, more than max_missing=50%")
    assert infer_roles(frame).numeric == ("x", "sparse")  # the library default keeps every column
