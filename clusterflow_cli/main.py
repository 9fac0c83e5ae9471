"""The ``clusterflow`` command line (the public part is described in the README).

Errors end with exactly one line on stderr (``clusterflow: error: ...``) and a non-zero exit;
``--debug`` shows the traceback too. The terminal shows clusterflow's own lines (progress bars and
the final summary); Prefect's log lines only with ``--verbose`` (:mod:`clusterflow_cli.console`).
Heavy imports (Prefect, MLflow, torch) happen inside the commands, so ``--help`` is instant, and
``score`` of a model without text never imports torch.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from clusterflow.errors import ClusterflowError
from clusterflow_cli.parser import PROG, build_parser

__all__ = ["PROG", "build_parser", "leave", "main", "run"]


def _train_config(args: argparse.Namespace):
    from clusterflow.config import TrainConfig
    from clusterflow_cli.options import build_config, table_fields

    sweep = {"k_min": args.k_min, "k_max": args.k_max, "k": args.k, "noise": args.noise}
    if args.algorithms:
        sweep["algorithms"] = args.algorithms
    return build_config(
        "train",
        TrainConfig,
        **table_fields(args),
        out_dir=args.out,
        impute={"method": args.impute},
        embed={"backend": args.embed_backend},
        features={
            "max_categories": args.max_categories,
            "text_weight": args.text_weight,
            "categorical_weight": args.categorical_weight,
            "max_missing": args.max_missing,
        },
        sweep=sweep,
        registry={
            "holdout_share": args.holdout_share,
            "model_name": args.model_name,
            "replace_incompatible": args.replace_incompatible,
        },
    )


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
        partitioned=bool(args.dask_address),
        text_column=config.text_column,
        id_column=config.id_column,
        exclude_columns=config.exclude_columns,
        time_column=config.time_column,
    )
    from clusterflow_cli.console import say, stage_bars, terminal
    from clusterflow_cli.preflight import check_dask_address, check_output
    from clusterflow_cli.server import prefect_api

    if args.out:
        check_output(args.out, folder=True)
    check_dask_address(args.dask_address)  # a bad address fails before Prefect starts
    with prefect_api(config.workspace, echo=say) as api_url:
        if args.dask_address:
            from functools import partial

            from clusterflow_orchestration.flows.partitioned import partitioned_training_flow

            flow = partial(partitioned_training_flow, dask_address=args.dask_address)
        else:
            from clusterflow_orchestration.flows.training import training_flow

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
    from clusterflow.cluster.selection import runner_up_figures
    from clusterflow.outputs import imputer_text

    out = Path(summary["outputs"]["assignments"]).parent
    sizes = ", ".join(f"{k}:{v}" for k, v in summary["cluster_sizes"].items())
    imputer = imputer_text(summary["imputer"], summary.get("categorical_imputer"))
    print(
        f"\nclusterflow: {summary['rows_in']} rows in, {summary['rows_clustered']} clustered, "
        f"{summary['rows_quarantined']} quarantined (imputer: {imputer})"
    )
    print(f"  found k={summary['k']} with {summary['algorithm']}  [{sizes}]")
    for alt in summary.get("runner_ups") or []:
        print(
            f"  runner-up ({alt['role']}): k={alt['k']} with {alt['algorithm']} "
            f"({runner_up_figures(alt)}; pin it with --k {alt['k']})"
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


REGISTRY_COMMANDS = frozenset({"train", "score", "monitor"})
"""Commands that use the model registry: all of them take the same one (``use_stack_registry``)."""


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
        if args.command in REGISTRY_COMMANDS:
            from clusterflow_cli.server import use_stack_registry

            use_stack_registry(args.workspace)
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


def run() -> None:
    """Entry point of the ``clusterflow`` console script: :func:`main`, then :func:`leave`."""
    leave(main())


def leave(code: int) -> None:
    """End the process with ``code`` once its work is done, skipping the native teardown.

    The interpreter's own exit runs :func:`threading._shutdown` (threading's exit hooks, which
    stop idle executor workers such as the one importing OpenVINO starts, then a join of the
    other non-daemon threads), then the ``atexit`` hooks, and then finalises every module,
    which destroys the native thread pools loaded by the command (Arrow's, through the stage
    store's Parquet files; OpenBLAS's): Arrow's can end the process in ``std::terminate``
    ("terminate called without an active exception", exit 134) after the output was written,
    as ``impute`` did in 2 of 20 runs (apache/arrow#34314). This does the first two, flushes
    stdout and stderr, and exits without the third.
    """
    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter's exit calls
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # the reader went away (``| head``): nothing more to say
    except (OSError, ValueError) as err:  # a full disk: the output is cut, so not a success
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"{PROG}: error: could not write the output: {err}\n")
        code = code or 120  # what the interpreter's own exit gives
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
