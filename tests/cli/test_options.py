"""Options built from the config: defaults and choices are the config's; errors show the flag."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clusterflow.config import Algorithm, ImputeMethod, MonitorConfig, ScoreConfig, TrainConfig
from clusterflow_cli.options import config_field, flag_for
from clusterflow_cli.parser import command_parser

CONFIGS = {
    "train": TrainConfig,
    "impute": TrainConfig,
    "score": ScoreConfig,
    "monitor": MonitorConfig,
}


def test_every_config_backed_option_keeps_the_config_default_and_choices():
    seen = 0
    for command, config in CONFIGS.items():
        for action in command_parser(command)._actions:
            path = getattr(action, "config_field", None)
            if path is None or action.default is None:
                continue
            info = config_field(config, path)
            expected = None if info.is_required() else info.get_default(call_default_factory=True)
            expected = tuple(expected) if isinstance(expected, tuple) else expected
            assert action.default == expected, (command, path)
            seen += 1
    assert seen >= 15


def test_choices_come_from_the_enums():
    train, impute = command_parser("train"), command_parser("impute")
    by_flag = {f: a for a in train._actions for f in a.option_strings}
    assert by_flag["--impute"].choices == [m.value for m in ImputeMethod]
    assert (
        "drop" not in {f: a for a in impute._actions for f in a.option_strings}["--method"].choices
    )
    assert all(m.value in by_flag["--algorithms"].help for m in Algorithm)


def test_a_field_maps_back_to_its_flag():
    train = command_parser("train")
    assert flag_for(train, ("sweep", "k_max")) == "--k-max"
    assert flag_for(train, ("sweep", "algorithms", 1)) == "--algorithms"
    assert flag_for(train, ("registry", "promote")) is None


def test_an_invalid_value_is_reported_with_its_flag(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "clusterflow_cli.main", "train", "x.csv", "--max-missing", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "--max-missing (features.max_missing)" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--max-missing", "2", "--max-missing (features.max_missing)"),
        ("--holdout-share", "1.5", "--holdout-share (registry.holdout_share)"),
        ("--max-categories", "0", "--max-categories (features.max_categories)"),
        ("--seed", "-5", "--seed (random_state)"),
    ],
)
def test_impute_reports_an_invalid_value_with_its_flag(tmp_path, option, value, words):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,\n5,6\n")
    proc = subprocess.run(
        [sys.executable, "-m", "clusterflow_cli.main", "impute", "x.csv", "--out", "y.csv"]
        + [option, value],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert words in line and "clusterflow impute --help" in line
    assert not (tmp_path / "y.csv").exists()


def test_score_and_monitor_take_a_dask_address():
    from clusterflow_cli.parser import build_parser

    parser = build_parser()
    for argv in (["score", "d.csv", "--out", "o.csv"], ["monitor", "d.csv", "--out", "o"]):
        assert parser.parse_args([*argv, "--dask-address", "local:2"]).dask_address == "local:2"
        assert parser.parse_args(argv).dask_address is None


def test_block_weights_reach_the_config():
    """--text-weight and --categorical-weight set the feature builder's block weights."""
    from clusterflow_cli.main import _train_config
    from clusterflow_cli.parser import build_parser

    argv = ["train", "x.csv", "--text-weight", "0.5", "--categorical-weight", "1"]
    config = _train_config(build_parser().parse_args(argv))
    assert (config.features.text_weight, config.features.categorical_weight) == (0.5, 1.0)
    config = _train_config(build_parser().parse_args(["train", "x.csv"]))
    assert config.features.categorical_weight is None  # the documented default applies


def test_impute_holds_out_the_rows_training_holds_out():
    """impute fits the imputer as train does: the same --time-column and --holdout-share."""
    from clusterflow_cli.commands import _impute_config
    from clusterflow_cli.main import _train_config
    from clusterflow_cli.parser import build_parser

    shared = ["x.csv", "--time-column", "when", "--holdout-share", "0.3"]
    train = _train_config(build_parser().parse_args(["train", *shared]))
    impute = _impute_config(build_parser().parse_args(["impute", *shared, "--out", "o.csv"]))
    for config in (train, impute):
        assert (config.time_column, config.registry.holdout_share) == ("when", 0.3)


def test_an_empty_dask_address_is_refused_not_ignored(tmp_path, capsys):
    """`--dask-address ''` ran in process without a word."""
    from clusterflow_cli.main import main

    data = tmp_path / "t.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    args = ["score", str(data), "--out", str(tmp_path / "a.csv"), "--dask-address", ""]
    assert main([*args, "--workspace", str(tmp_path / "ws")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "the Dask address is empty" in line


def test_the_per_column_line_of_impute_survives_a_column_with_nothing_to_hide():
    from clusterflow_cli.commands import _column_scores_line

    line = _column_scores_line(
        [
            {"column": "a", "kind": "numeric_rmse", "error": None, "mean_error": None},
            {"column": "b", "kind": "numeric_rmse", "error": 0.5, "mean_error": 1.0},
            {"column": "c", "kind": "categorical_error", "error": 0.6, "mean_error": 0.5}
            | {"no_better_than_mean": True},
        ]
    )
    assert "a n/a" in line and "b 0.50 vs 1.00" in line
    assert "c 60% vs 50% (no better than the mean)" in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["impute", "x.csv", "--out", "y.csv", "--max-missing", "abc"], "invalid float value"),
        (["impute", "x.csv", "--out", "y.csv", "--seed", "4294967296"], "--seed (random_state)"),
        (["train"], "required: DATA"),
    ],
)
def test_an_unparsable_or_out_of_range_option_is_one_line(tmp_path, args, words):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,\n5,6\n")
    proc = subprocess.run(
        [sys.executable, "-m", "clusterflow_cli.main", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert words in line and "--help" in line
