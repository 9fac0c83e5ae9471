"""The ``clusterflow`` command line (see CONTRACT.md for the public part).

Errors a user can cause end with one line on stderr (``clusterflow: error: ...``) and a non-zero
exit; ``--debug`` shows the traceback too. Heavy imports (Prefect, MLflow, torch) happen inside the
commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from clusterflow.errors import ClusterflowError

PROG = "clusterflow"


def _csv_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="input table: .csv, .csv.gz, .parquet or .jsonl")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument(
        "--workspace",
        default=".clusterflow",
        metavar="DIR",
        help="caches and the default MLflow store (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Find the groups in messy records (tabular columns with gaps plus free text) "
        "and keep the grouping healthy over time.",
        epilog="Environment: MLFLOW_TRACKING_URI (default: SQLite under ./.clusterflow/), "
        "PREFECT_API_URL (default: a local ephemeral Prefect). No network is needed.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="run the training flow on one data file",
        description="Ingest, validate, impute, embed, sweep algorithms and k, register the model. "
        "Writes assignments.csv, quarantine.csv and summary.json into --out.",
    )
    _add_data_options(train)
    train.add_argument("--text-column", metavar="NAME", help="free-text column to embed")
    train.add_argument("--id-column", metavar="NAME", help="row identifier (default: row number)")
    train.add_argument(
        "--exclude-columns",
        type=_csv_list,
        default=(),
        metavar="A,B",
        help="columns never used as features (labels, free ids, timestamps)",
    )
    train.add_argument("--k-min", type=int, default=2, metavar="N", help="smallest k (default: 2)")
    train.add_argument(
        "--k-max",
        type=int,
        default=None,
        metavar="N",
        help="largest k (default: grows with the rows, see README)",
    )
    train.add_argument(
        "--algorithms",
        type=_csv_list,
        default=None,
        metavar="A,B",
        help="subset of kmeans,agglomerative,hdbscan,gmm (default: all)",
    )
    train.add_argument(
        "--noise",
        choices=["assign", "keep"],
        default="assign",
        help="HDBSCAN noise: assign to nearest cluster or keep as -1",
    )
    train.add_argument(
        "--impute",
        choices=["auto", "mean", "median", "most_frequent", "knn", "iterative", "drop"],
        default="auto",
        help="imputer; 'auto' scores them on masked known values (default)",
    )
    train.add_argument(
        "--max-categories",
        type=int,
        default=30,
        metavar="N",
        help="text columns with more distinct values are not categories",
    )
    train.add_argument(
        "--text-weight",
        type=float,
        default=None,
        metavar="W",
        help="weight of the text block against the tabular block",
    )
    train.add_argument(
        "--max-missing",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="columns with a larger share of missing values are not features (default: 0.5)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument(
        "--model-name",
        default="clusterflow",
        metavar="NAME",
        help="registered model name (default: %(default)s)",
    )
    train.add_argument(
        "--no-register", action="store_true", help="do not log or register the model (outputs only)"
    )
    train.add_argument(
        "--out", metavar="DIR", help="output folder (default: ./clusterflow-runs/<run id>)"
    )
    train.add_argument("--json", action="store_true", help="print summary.json on stdout")
    train.add_argument(
        "--dask-address",
        metavar="ADDR",
        help="run the data stages partitioned on a dask.distributed cluster (tcp://host:8786, "
        "or 'local' / 'local:N' for a temporary LocalCluster of N worker processes)",
    )

    imp = sub.add_parser("impute", help="fill gaps the way training would; writes the full table")
    _add_data_options(imp)
    imp.add_argument("--out", required=True, metavar="FILE", help="output .csv/.parquet/.jsonl")
    imp.add_argument(
        "--exclude-columns",
        type=_csv_list,
        default=(),
        metavar="A,B",
        help="columns left as they are",
    )
    imp.add_argument("--text-column", metavar="NAME", help="free-text column (left as it is)")
    imp.add_argument("--id-column", metavar="NAME", help="row identifier (left as it is)")
    imp.add_argument(
        "--method",
        choices=["auto", "mean", "median", "most_frequent", "knn", "iterative"],
        default="auto",
        help="imputer",
    )
    imp.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    imp.add_argument("--json", action="store_true", help="print a summary as JSON on stdout")

    score = sub.add_parser("score", help="assign clusters with a registered model")
    _add_data_options(score)
    score.add_argument("--out", required=True, metavar="FILE", help="output CSV: <id>,cluster")
    score.add_argument(
        "--model",
        default="models:/clusterflow@champion",
        metavar="URI",
        help="model URI (default: %(default)s)",
    )
    score.add_argument("--id-column", metavar="NAME", help="row identifier (default: the model's)")
    score.add_argument(
        "--details", action="store_true", help="also write distance and novel columns"
    )

    mon = sub.add_parser("monitor", help="drift of a new batch against the model's reference")
    _add_data_options(mon)
    mon.add_argument(
        "--out", required=True, metavar="DIR", help="folder for drift.json and the HTML report"
    )
    mon.add_argument(
        "--model",
        default="models:/clusterflow@champion",
        metavar="URI",
        help="model URI (default: %(default)s)",
    )
    mon.add_argument("--json", action="store_true", help="print drift.json on stdout")
    mon.add_argument(
        "--no-event",
        action="store_true",
        help="do not emit the drift event that triggers retraining",
    )
    mon.add_argument(
        "--seed", type=int, default=0, help="seed of the samples and the domain classifier"
    )
    try:  # the local stack and serving commands (up/down/serve) live in their own module
        from clusterflow_cli import stack
    except ImportError:
        stack = None
    if stack is not None:
        stack.add_parsers(sub)
    return parser


def _configure_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "urllib3", "alembic", "sentence_transformers", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "DEBUG" if debug else "INFO")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _train_config(args: argparse.Namespace):
    from pydantic import ValidationError

    from clusterflow.config import TrainConfig
    from clusterflow.errors import ConfigError

    sweep = {"k_min": args.k_min, "k_max": args.k_max, "noise": args.noise}
    if args.algorithms:
        sweep["algorithms"] = args.algorithms
    try:
        return TrainConfig(
            data=str(args.data),
            text_column=args.text_column,
            id_column=args.id_column,
            exclude_columns=args.exclude_columns,
            out_dir=args.out,
            workspace=args.workspace,
            random_state=args.seed,
            impute={"method": args.impute},
            features={
                "max_categories": args.max_categories,
                "text_weight": args.text_weight,
                "max_missing": args.max_missing,
            },
            sweep=sweep,
            registry={"model_name": args.model_name},
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise ConfigError(
            f"invalid option {where}: {first['msg']}", hint=f"see {PROG} train --help"
        ) from err


def preflight(data: str, **columns) -> None:
    """Check the file's header and the named columns before any flow (and Prefect) starts.

    The same checks run again inside the flow; here they make the common mistakes (wrong path,
    format, encoding, delimiter, a misspelled column) fail at once with one line on stderr.
    """
    from clusterflow.io import read_header
    from clusterflow.schema import check_named_columns

    header = read_header(data)
    if header:
        check_named_columns(header, source=Path(data).name, **columns)


def cmd_train(args: argparse.Namespace) -> int:
    """Run the training flow and print where to look."""
    config = _train_config(args)
    preflight(
        config.data,
        text_column=config.text_column,
        id_column=config.id_column,
        exclude_columns=config.exclude_columns,
    )
    if args.dask_address:
        from clusterflow.distributed import parse_dask_address
        from flows.partitioned import partitioned_training_flow

        parse_dask_address(args.dask_address)  # a bad address fails before Prefect starts
        summary = partitioned_training_flow(
            config=config, dask_address=args.dask_address, register_model=not args.no_register
        )
    else:
        from flows.training import training_flow

        summary = training_flow(config=config, register_model=not args.no_register)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_train_summary(summary, config)
    return 0


def _print_train_summary(summary: dict, config) -> None:
    out = Path(summary["outputs"]["assignments"]).parent
    sizes = ", ".join(f"{k}:{v}" for k, v in summary["cluster_sizes"].items())
    print(
        f"\nclusterflow: {summary['rows_in']} rows in, {summary['rows_clustered']} clustered, "
        f"{summary['rows_quarantined']} quarantined (imputer: {summary['imputer']})"
    )
    print(f"  found k={summary['k']} with {summary['algorithm']}  [{sizes}]")
    if summary.get("metrics_disagree"):
        print(f"  note: {summary['metrics_disagree']}")
    if summary.get("model_uri"):
        state = "promoted to @champion" if summary["promoted"] else "not promoted"
        print(f"  model {summary['model_uri']} ({state}: {summary.get('promotion_reason', '')})")
    print(f"  outputs: {out}/ (assignments.csv, quarantine.csv, summary.json, artifacts/)")
    print(
        "  look around:  prefect server start   |   "
        f"mlflow ui --backend-store-uri {summary.get('tracking_uri') or 'sqlite:///.clusterflow/mlflow.db'}"
    )


def _drop_user_error_tracebacks(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, ClusterflowError):
        record.exc_info = None
        record.exc_text = None
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clusterflow`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    _configure_logging(debug)
    # The ephemeral Prefect server's telemetry races its own SQLite and logs a traceback.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not debug:
        # Prefect logs a failed run with its traceback; for a user error the one line below says
        # it all (the run's state keeps the message, and --debug prints the traceback).
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(_drop_user_error_tracebacks)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_drop_user_error_tracebacks)
    commands = {"train": cmd_train}
    from clusterflow_cli import commands as extra

    commands.update(extra.COMMANDS)
    try:
        from clusterflow_cli import stack

        commands.update(stack.COMMANDS)
    except ImportError:
        pass
    try:
        return commands[args.command](args)
    except ClusterflowError as err:
        if debug:
            raise
        print(f"{PROG}: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
