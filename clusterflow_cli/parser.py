"""The ``clusterflow`` argument parser: one builder per subcommand.

An option that sets a config field is added with :func:`~clusterflow_cli.options.add_field_option`,
so its type, default, choices and help come from :mod:`clusterflow.config`; only the flag name,
its metavar and what is particular to the command are written here. Options with no config field
(``--json``, ``--no-register``, ``--dask-address``, ...) are written by hand.
"""

from __future__ import annotations

import argparse

from pydantic import BaseModel

from clusterflow.config import ImputeMethod, MonitorConfig, ScoreConfig, TrainConfig
from clusterflow_cli.options import add_field_option

PROG = "clusterflow"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (argparse prints the usage above them)."""

    def error(self, message: str):  # type: ignore[override]
        """Print ``<prog>: error: <message>; see <prog> --help`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    parser = OneLineParser(
        prog=PROG,
        description="Find the groups in messy records (tabular columns with gaps plus free text) "
        "and keep the grouping healthy over time.",
        epilog="Environment: MLFLOW_TRACKING_URI (default: SQLite under ./.clusterflow/), "
        "PREFECT_API_URL (default: the server of 'clusterflow up', else one local server that the "
        "first train starts and keeps running; 'clusterflow down' stops it). No network is needed.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_impute(sub)
    _add_score(sub)
    _add_monitor(sub)
    try:  # the local stack and serving commands (up/down/serve) live in their own module
        from clusterflow_cli import stack
    except ImportError:
        stack = None  # type: ignore[assignment]
    if stack is not None:
        stack.add_parsers(sub)
    return parser


def command_parser(command: str) -> argparse.ArgumentParser:
    """Return the parser of one subcommand (``train``), e.g. to find the flag of a field."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _add_data_options(p: argparse.ArgumentParser, config: type[BaseModel]) -> None:
    """Add DATA, --verbose, --debug and --workspace: the options of every command on a table."""
    add_field_option(p, "data", config, "data", metavar="DATA")
    p.add_argument(
        "--verbose", action="store_true", help="also show Prefect's log lines (flow and task runs)"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    add_field_option(p, "--workspace", config, "workspace", metavar="DIR")


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="run the training flow on one data file",
        description="Ingest, validate, impute, embed, sweep algorithms and k, register the model. "
        "Writes assignments.csv, quarantine.csv and summary.json into --out.",
    )
    _add_data_options(train, TrainConfig)
    field = _field_adder(train, TrainConfig)
    field("--text-column", "text_column", metavar="NAME")
    field("--id-column", "id_column", metavar="NAME")
    field("--exclude-columns", "exclude_columns")
    field("--k-min", "sweep.k_min", metavar="N")
    field("--k", "sweep.k", metavar="N")
    field("--k-max", "sweep.k_max", metavar="N")
    # None: the config's default list (the help shows it); an explicit list replaces it.
    field("--algorithms", "sweep.algorithms", default=None)
    field("--noise", "sweep.noise")
    field("--impute", "impute.method")
    field("--max-categories", "features.max_categories", metavar="N")
    field("--embed-backend", "embed.backend")
    field("--text-weight", "features.text_weight", metavar="W")
    field("--categorical-weight", "features.categorical_weight", metavar="W")
    field("--max-missing", "features.max_missing", metavar="SHARE")
    field("--seed", "random_state")
    field("--time-column", "time_column", metavar="NAME")
    field("--holdout-share", "registry.holdout_share", metavar="SHARE")
    field("--replace-incompatible", "registry.replace_incompatible")
    field("--model-name", "registry.model_name", metavar="NAME")
    train.add_argument(
        "--no-register", action="store_true", help="do not log or register the model (outputs only)"
    )
    field("--out", "out_dir", metavar="DIR")
    train.add_argument("--json", action="store_true", help="print summary.json on stdout")
    _dask_option(train, "run the data stages")


def _add_impute(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "impute",
        help="validate and fill gaps exactly as training does",
        description="Validate and impute exactly as train does (same roles, --max-missing and "
        "quarantine): writes the valid rows with their gaps filled to --out and the quarantined "
        "rows with their reason to <out stem>.quarantine.csv beside it (the name up to its first "
        "dot: filled.csv gives filled.quarantine.csv).",
    )
    _add_data_options(imp, TrainConfig)
    field = _field_adder(imp, TrainConfig)
    imp.add_argument(
        "--out", required=True, metavar="FILE", help="output .csv, .csv.gz, .parquet or .jsonl"
    )
    field("--exclude-columns", "exclude_columns", note="impute leaves them as they are")
    field("--text-column", "text_column", metavar="NAME", note="impute leaves it as it is")
    field("--id-column", "id_column", metavar="NAME", note="impute leaves it as it is")
    field(
        ("--method", "--impute"),
        "impute.method",
        dest="method",
        exclude={ImputeMethod.drop},
        help="imputer, as train's --impute: 'auto' hides a share of known values and picks the "
        "imputer (or the average of two or three of knn, iterative and forest) that restores "
        "them best (default: auto)",
    )
    field("--max-categories", "features.max_categories", metavar="N", note="as train")
    field("--max-missing", "features.max_missing", metavar="SHARE", note="as train")
    field("--seed", "random_state")
    note = "as train: the imputer is fitted without the rows training holds out for the gate"
    field("--time-column", "time_column", metavar="NAME", note=note)
    field("--holdout-share", "registry.holdout_share", metavar="SHARE", note=note)
    imp.add_argument("--json", action="store_true", help="print a summary as JSON on stdout")


def _add_score(sub: argparse._SubParsersAction) -> None:
    score = sub.add_parser(
        "score",
        help="assign clusters with a registered model",
        description="Assign every row of a batch a cluster with a registered model (the "
        "champion by default), filling its gaps with the model's imputer: writes <id>,cluster "
        "per input row to --out (with --details also distance and novel).",
    )
    _add_data_options(score, ScoreConfig)
    field = _field_adder(score, ScoreConfig)
    field("--out", "out", metavar="FILE")
    field("--model", "model_uri", metavar="URI")
    field("--id-column", "id_column", metavar="NAME")
    field("--details", "details")
    _dask_option(score, "score the batch")


def _add_monitor(sub: argparse._SubParsersAction) -> None:
    mon = sub.add_parser(
        "monitor",
        help="drift of a new batch against the model's reference",
        description="Compare a new batch with the reference the model kept from its training "
        "rows (features, clusters, text), write drift.json, an HTML report and quarantine.csv "
        "into --out, and on drift emit the event that triggers retraining.",
    )
    _add_data_options(mon, MonitorConfig)
    field = _field_adder(mon, MonitorConfig)
    # Required here although MonitorConfig.out_dir may be None: the contract's `monitor --out DIR`.
    mon.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for drift.json, the HTML report and quarantine.csv",
    )
    field("--model", "model_uri", metavar="URI")
    mon.add_argument("--json", action="store_true", help="print drift.json on stdout")
    # The flag negates MonitorConfig.emit_event (cmd_monitor passes emit_event=not no_event).
    mon.add_argument(
        "--no-event",
        action="store_true",
        help="do not emit the drift event that triggers retraining",
    )
    field("--seed", "random_state")
    _dask_option(mon, "validate and score the batch")


def _dask_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--dask-address``: ``what`` the command does partitioned on a Dask cluster."""
    parser.add_argument(
        "--dask-address",
        metavar="ADDR",
        help=f"{what} partitioned on a dask.distributed cluster (tcp://host:8786, or 'local' / "
        "'local:N' for a temporary LocalCluster of N worker processes); the workers must see "
        "--workspace and DATA",
    )


def _field_adder(parser: argparse.ArgumentParser, config: type[BaseModel]):
    """Return ``field(flags, path, **options)``: :func:`add_field_option` bound to one command."""

    def field(flags: str | tuple[str, ...], path: str, **options) -> argparse.Action:
        return add_field_option(parser, flags, config, path, **options)

    return field
