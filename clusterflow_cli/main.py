"""The ``clusterflow`` command line (the public part is described in the README).

Errors end with exactly one line on stderr (``clusterflow: error: ...``) and a non-zero exit;
``--debug`` shows the traceback too. The terminal shows clusterflow's own lines (progress bars and
the final summary); Prefect's log lines only with ``--verbose`` (:mod:`clusterflow_cli.console`).
Heavy imports (Prefect, MLflow, torch) happen inside the commands, so ``--help`` is instant, and
``score`` of a model without text never imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from clusterflow.config import EmbedBackend, EmbedConfig, ImputeMethod
from clusterflow.errors import ClusterflowError

PROG = "clusterflow"


def _csv_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="input table: .csv, .csv.gz, .parquet or .jsonl")
    p.add_argument(
        "--verbose", action="store_true", help="also show Prefect's log lines (flow and task runs)"
    )
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
        "PREFECT_API_URL (default: the server of 'clusterflow up', else one local server that the "
        "first train starts and keeps running; 'clusterflow down' stops it). No network is needed.",
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
        "--k",
        type=int,
        default=None,
        metavar="N",
        help="pin the number of clusters (the sweep only chooses the algorithm)",
    )
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
        choices=[m.value for m in ImputeMethod],
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
        "--embed-backend",
        choices=[b.value for b in EmbedBackend],
        default=EmbedBackend.auto.value,
        help=" ".join(EmbedConfig.model_fields["backend"].description.split()),
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
        "--time-column",
        metavar="NAME",
        help="time of each row: the champion gate holds out the most recent rows (never a feature)",
    )
    train.add_argument(
        "--replace-incompatible",
        action="store_true",
        help="replace a champion that cannot score this data (other columns); otherwise the new "
        "model becomes 'challenger'",
    )
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

    imp = sub.add_parser(
        "impute",
        help="validate and fill gaps exactly as training does",
        description="Validate and impute exactly as train does (same roles, --max-missing and "
        "quarantine): writes the valid rows with their gaps filled to --out and the quarantined "
        "rows with their reason to <out>.quarantine.csv.",
    )
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
        "--impute",
        dest="method",
        choices=[m.value for m in ImputeMethod if m is not ImputeMethod.drop],
        default="auto",
        help="imputer, as train's --impute (default: auto)",
    )
    imp.add_argument(
        "--max-categories",
        type=int,
        default=30,
        metavar="N",
        help="text columns with more distinct values are not categories (as train)",
    )
    imp.add_argument(
        "--max-missing",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="columns with a larger share of missing values are left as they are (as train)",
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


def _train_config(args: argparse.Namespace):
    from pydantic import ValidationError

    from clusterflow.config import TrainConfig
    from clusterflow.errors import ConfigError

    sweep = {"k_min": args.k_min, "k_max": args.k_max, "k": args.k, "noise": args.noise}
    if args.algorithms:
        sweep["algorithms"] = args.algorithms
    try:
        return TrainConfig(
            data=str(args.data),
            text_column=args.text_column,
            id_column=args.id_column,
            exclude_columns=args.exclude_columns,
            time_column=args.time_column,
            out_dir=args.out,
            workspace=args.workspace,
            random_state=args.seed,
            impute={"method": args.impute},
            embed={"backend": args.embed_backend},
            features={
                "max_categories": args.max_categories,
                "text_weight": args.text_weight,
                "max_missing": args.max_missing,
            },
            sweep=sweep,
            registry={
                "model_name": args.model_name,
                "replace_incompatible": args.replace_incompatible,
            },
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
    from clusterflow_cli.preflight import check_file

    check_file(data, **columns)


def cmd_train(args: argparse.Namespace) -> int:
    """Run the training flow and print where to look."""
    config = _train_config(args)
    preflight(
        config.data,
        text_column=config.text_column,
        id_column=config.id_column,
        exclude_columns=config.exclude_columns,
    )
    from clusterflow_cli.console import say, stage_bars, terminal
    from clusterflow_cli.server import prefect_api

    if args.dask_address:
        from clusterflow.distributed import parse_dask_address

        parse_dask_address(args.dask_address)  # a bad address fails before Prefect starts
    with prefect_api(config.workspace, echo=say) as api_url:
        if args.dask_address:
            from functools import partial

            from flows.partitioned import partitioned_training_flow

            flow = partial(partitioned_training_flow, dask_address=args.dask_address)
        else:
            from flows.training import training_flow

            flow = training_flow
        with _stdout_to_stderr(args.json), stage_bars():
            state = flow(config=config, register_model=not args.no_register, return_state=True)
            summary = state.result()
    if args.json:
        print(json.dumps(summary))
    else:
        _print_train_summary(summary, config)
    _print_run_links(summary, state, api_url, terminal() if args.json else sys.stdout)
    return 0


@contextlib.contextmanager
def _stdout_to_stderr(active: bool):
    """Send stdout to stderr while the flow runs, when ``active`` (``--json``).

    Under ``--json`` stdout carries the JSON object alone; MLflow prints "View run ..." banners
    there for a tracking server.
    """
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _print_run_links(summary: dict, state, api_url: str | None, stream) -> None:
    """End a run with links to its Prefect flow run, MLflow run and model version.

    ``api_url`` is the Prefect API the run reported to (a kept or stack server set through
    Prefect's settings, not the environment), so the flow-run link points at its UI.
    """
    from clusterflow_cli.links import run_link_lines

    environ = dict(os.environ)
    if api_url and not environ.get("PREFECT_API_URL"):
        environ["PREFECT_API_URL"] = api_url
    flow_run_id = getattr(state.state_details, "flow_run_id", None)
    lines = run_link_lines(summary, str(flow_run_id) if flow_run_id else None, environ)
    if lines:
        print("  look around:", file=stream)
        for line in lines:
            print(line, file=stream)


def _print_train_summary(summary: dict, config) -> None:
    out = Path(summary["outputs"]["assignments"]).parent
    sizes = ", ".join(f"{k}:{v}" for k, v in summary["cluster_sizes"].items())
    print(
        f"\nclusterflow: {summary['rows_in']} rows in, {summary['rows_clustered']} clustered, "
        f"{summary['rows_quarantined']} quarantined (imputer: {summary['imputer']})"
    )
    print(f"  found k={summary['k']} with {summary['algorithm']}  [{sizes}]")
    for alt in summary.get("runner_ups") or []:
        print(
            f"  runner-up ({alt['role']}): k={alt['k']} with {alt['algorithm']} "
            f"(evidence {alt['evidence']:.3f}, silhouette {alt['silhouette']:.3f}; "
            f"pin it with --k {alt['k']})"
        )
    for line in cluster_lines(summary):
        print(line)
    if summary.get("stages"):
        print("  " + stage_line(summary["stages"]))
    if summary.get("metrics_disagree"):
        print(f"  note: {summary['metrics_disagree']}")
    if summary.get("model_uri"):
        state = "promoted to @champion" if summary["promoted"] else "not promoted"
        print(f"  model {summary['model_uri']} ({state}: {summary.get('promotion_reason', '')})")
    print(f"  outputs: {out}/ (assignments.csv, quarantine.csv, summary.json, artifacts/)")


def cluster_lines(summary: dict, limit: int = 12) -> list[str]:
    """One line per cluster: id, size and its short label (from the cluster cards)."""
    lines = []
    clusters = summary.get("clusters") or []
    for card in clusters[:limit]:
        name = "noise" if card["cluster"] < 0 else f"cluster {card['cluster']}"
        label = card.get("label") or "-"
        note = f"  ({card['note']})" if card.get("note") else ""
        lines.append(f"    {name:>10}: {card['size']:>6} rows  {label}{note}")
    if len(clusters) > limit:
        lines.append(f"    ... {len(clusters) - limit} more in summary.json")
    return lines


def stage_line(stages: dict) -> str:
    """Seconds per stage on one line (``read 0.2s, validate 0.1s, ...``)."""
    parts = [
        f"{name} {info['seconds']:.1f}s{' (reused)' if info.get('reused') else ''}"
        for name, info in stages.items()
        if info.get("seconds") is not None
    ]
    return "stages: " + ", ".join(parts)


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
    from clusterflow_cli import console

    verbose = getattr(args, "verbose", False)
    level = console.DEBUG if debug else console.VERBOSE if verbose else console.QUIET
    console.configure(level)
    if level == console.QUIET:
        console.quiet_prefect_console()
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
        with console.muffled(level == console.QUIET):
            return commands[args.command](args)
    except ClusterflowError as err:
        if debug:
            raise
        print(f"{PROG}: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug or an unforeseen failure: still one line, --debug for more
        if debug:
            raise
        text = " ".join(str(err).split())[:300] or type(err).__name__
        print(
            f"{PROG}: error: unexpected {type(err).__name__}: {text}; rerun with --debug for "
            "the traceback and report it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
