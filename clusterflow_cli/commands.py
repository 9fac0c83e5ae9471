"""The impute, score and monitor subcommands (train lives in main).

Each checks its file, its columns and (score, monitor) its model before any flow starts.
``score`` runs no flow engine: it loads the model and assigns the rows directly (the same
:func:`clusterflow.scoring.score_table` the scoring flow runs), so it costs little more than
loading the model; with ``PREFECT_API_URL`` set it records the run there as a flow run.
``monitor`` emits events and artifacts, so it always reports to a Prefect API (see
:mod:`clusterflow_cli.server`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def _check_output_type(target: Path) -> None:
    from clusterflow.errors import InputError

    if not target.name.lower().endswith(
        (".parquet", ".pq", ".jsonl", ".ndjson", ".csv", ".csv.gz")
    ):
        raise InputError(
            f"{target}: unsupported output type", hint="write .csv, .csv.gz, .parquet or .jsonl"
        )


def check_not_the_input(out: str | Path, data: str | Path) -> None:
    """Refuse an ``--out`` that is the input file: writing it would destroy the data read.

    Raises
    ------
    ConfigError
        Naming both.
    """
    from clusterflow.errors import ConfigError

    if Path(out).resolve() == Path(data).resolve():
        raise ConfigError(
            f"{out} is the input file; writing it would replace the data",
            hint="write the output to another file",
        )


def _write_table(frame, target: Path) -> None:
    from clusterflow.io import atomic_path

    _check_output_type(target)
    name = target.name.lower()
    with atomic_path(target) as tmp:
        if name.endswith((".parquet", ".pq")):
            _write_parquet(frame, tmp)
        elif name.endswith((".jsonl", ".ndjson")):
            frame.to_json(tmp, orient="records", lines=True, date_format="iso")
        else:
            frame.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)


def _write_parquet(frame, target: Path) -> None:
    """Write ``frame`` as Parquet; a column Arrow cannot store as it is (mixed types) as text."""
    import pyarrow as pa

    from clusterflow.stages.common import sanitise_for_parquet

    try:
        frame.to_parquet(target, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        sanitise_for_parquet(frame).to_parquet(target, index=False)


def quarantine_path(out: str | Path) -> Path:
    """Where ``impute`` writes the rows it quarantined: ``<out name>.quarantine.csv`` beside it."""
    out = Path(out)
    stem = out.name.split(".")[0] or "imputed"
    return out.with_name(f"{stem}.quarantine.csv")


def cmd_impute(args: argparse.Namespace) -> int:
    """Validate and impute exactly as training does; write the valid rows with gaps filled.

    Same roles, same ``--max-missing`` and ``--max-categories`` rules, same quarantine (rows
    that fail validation go to ``<out>.quarantine.csv`` with their reason, as in training's
    quarantine.csv). The stages are the training stages (and share its stage store), so a table
    imputed here is the table training clusters.
    """
    from clusterflow.outputs import quarantined_rows
    from clusterflow_cli.main import preflight

    preflight(
        args.data,
        text_column=args.text_column,
        id_column=args.id_column,
        exclude_columns=args.exclude_columns,
        time_column=args.time_column,
    )
    from clusterflow.errors import ConfigError
    from clusterflow_cli.preflight import check_output

    target = Path(args.out)
    _check_output_type(target)
    check_not_the_input(target, args.data)
    check_output(target)
    quarantine = quarantine_path(target)
    for clash, problem, hint in (
        (
            Path(args.data),
            f"would put its quarantined rows in {quarantine}, the input file",
            "write the output under another name",
        ),
        (
            target,
            "is where impute writes the rows it quarantines",
            "choose a name that does not end in .quarantine.csv",
        ),
    ):
        if quarantine.resolve() == clash.resolve():
            raise ConfigError(f"--out {target} {problem}", hint=hint)
    snapshot, validated, imputed = _impute_stages(_impute_config(args))
    out = _filled_table(args.data, validated, imputed)
    _write_table(out.reset_index(drop=True), target)
    raw = quarantined_rows(snapshot, validated)
    qpath = quarantine_path(target)
    _write_table(raw, qpath)

    roles = validated.column_roles
    summary = {
        "rows_in": snapshot.n_rows,
        "rows": len(out),
        "rows_quarantined": len(raw),
        "filled_cells": imputed.missing_cells,
        "out": str(target),
        "quarantine": str(qpath),
        "method": imputed.method if roles.features else None,
        "categorical_method": imputed.categorical_method if roles.features else None,
        "column_scores": imputed.column_scores,
        "features": list(roles.features),
        "untouched_columns": sorted(roles.excluded),
    }
    _print_impute_summary(summary, as_json=args.json)
    return 0


def _impute_config(args: argparse.Namespace):
    """Return the training config ``impute`` runs the training stages with."""
    from clusterflow.config import TrainConfig
    from clusterflow_cli.options import build_config, table_fields

    return build_config(
        "impute",
        TrainConfig,
        **table_fields(args),
        impute={"method": args.method},
        features={"max_missing": args.max_missing, "max_categories": args.max_categories},
        registry={"holdout_share": args.holdout_share},
    )


def _impute_stages(config):
    """Run ingest, validate and impute in training's stage store; return their three handles."""
    from clusterflow import stages
    from clusterflow.store import StageStore

    store = StageStore(Path(config.workspace) / "stages")
    text_columns = (config.id_column,) if config.id_column else ()
    snapshot = stages.ingest(config.data, store, text_columns=text_columns)
    validated = stages.validate(snapshot, config, store)
    imputed = stages.impute(validated, config, store)
    return snapshot, validated, imputed


def _filled_table(data: str, validated, imputed):
    """Return the valid rows as read, with every gap of a feature column filled.

    Numeric features come back as floats (the values training clusters). A categorical feature
    keeps the file's own values where it had them and gets the filled ones, spelt as the file
    spells them (``true`` in a CSV, a boolean or a category in Parquet), in its gaps. The other
    columns (id, text, excluded) are the file's own: a CSV's as written (text), a Parquet or
    JSON Lines file's with their types (a date stays a date, a JSON object an object).
    """
    import pandas as pd

    from clusterflow.io import file_format, read_header, read_table

    roles = validated.column_roles
    if file_format(Path(data)) == "csv":
        as_text = [c for c in read_header(data) if c not in roles.numeric]
    else:
        as_text = [roles.id_column] if roles.id_column else []
    valid = pd.read_parquet(validated.valid_path, columns=list(roles.categorical))
    original = read_table(data, text_columns=as_text)
    out = original.loc[valid.index].copy()
    filled = pd.read_parquet(imputed.path).set_axis(valid.index)
    for column in roles.numeric:
        out[column] = filled[column]
    for column in roles.categorical:
        gaps = valid[column].isna()
        if gaps.any():
            out[column] = _filled_as_written(out[column], valid[column], filled[column], gaps)
    return out


def _filled_as_written(column, checked, filled, gaps):
    """Return the file's ``column`` with ``filled`` in its ``gaps``, spelt as the file spells them.

    ``checked`` is the column as validation gives it (text): its known cells pair each text with
    the file's own value (``"True"`` with ``true`` or ``True``, ``"a"`` with a category), and a
    filled text takes that value; one the file never had stays text.
    """
    import pandas as pd

    known = ~gaps
    pairs = pd.DataFrame({"text": checked[known], "value": column[known]})
    spelling = dict(pairs.drop_duplicates("text").itertuples(index=False, name=None))
    fills = filled[gaps].map(lambda text: spelling.get(text, text))
    if not isinstance(column.dtype, pd.CategoricalDtype) and str(column.dtype) != "boolean":
        column = column.astype(object)
    column.loc[fills.index] = fills
    return column


def _print_impute_summary(summary: dict, *, as_json: bool) -> None:
    """Print the summary as one JSON object, or as the sentence and the columns left alone."""
    if as_json:
        print(json.dumps(summary))
        return
    from clusterflow.outputs import imputer_text

    method = imputer_text(summary["method"], summary["categorical_method"])
    print(
        f"clusterflow: filled {summary['filled_cells']} cells in {summary['rows']} rows "
        f"with {method}; {summary['rows_quarantined']} rows quarantined "
        f"({summary['quarantine']}); wrote {summary['out']}"
    )
    if summary["column_scores"]:
        print(f"  {_column_scores_line(summary['column_scores'])}")
    if summary["untouched_columns"]:
        print(f"  left as they are: {', '.join(summary['untouched_columns'])}")


def _column_scores_line(records: list[dict]) -> str:
    """How well known cells, hidden and filled, came back per column, against the column mean."""
    parts = []
    for r in records:
        if r.get("error") is None or r.get("mean_error") is None or r["error"] != r["error"]:
            parts.append(f"{r['column']} n/a (no known cell to hide)")
            continue
        mark = " (no better than the mean)" if r.get("no_better_than_mean") else ""
        if r["kind"] == "numeric_rmse":
            parts.append(f"{r['column']} {r['error']:.2f} vs {r['mean_error']:.2f}{mark}")
        else:
            parts.append(f"{r['column']} {r['error']:.0%} vs {r['mean_error']:.0%}{mark}")
    return (
        "hidden known cells restored (standardised RMSE, or share wrong; vs filling with the "
        "mean or most common value): " + ", ".join(parts)
    )


def cmd_score(args: argparse.Namespace) -> int:
    """Assign clusters with a registered model; with ``PREFECT_API_URL``, record a flow run.

    No flow engine either way: the rows are scored by :func:`clusterflow.scoring.score_table`
    (what the scoring flow's task runs), and with a Prefect API the run is recorded there as a
    ``clusterflow-score`` flow run (:mod:`clusterflow_cli.recorded_run`). A model in a local
    SQLite registry is found and loaded without importing MLflow. With ``--dask-address`` the
    rows are scored partitioned on the cluster (:func:`clusterflow.partitioned.score_partitioned`).
    """
    from clusterflow.config import ScoreConfig
    from clusterflow.scoring import count_rows, score_notes
    from clusterflow_cli.options import build_config
    from clusterflow_cli.recorded_run import recorded_run

    header, local = _check_score(args)
    config = build_config(
        "score",
        ScoreConfig,
        data=str(args.data),
        out=args.out,
        model_uri=args.model,
        id_column=args.id_column,
        details=args.details,
        workspace=args.workspace,
    )
    api_url = os.environ.get("PREFECT_API_URL")
    with recorded_run(api_url, "clusterflow-score", {"config": config.model_dump()}) as run:
        model, model_run_id = _load_score_model(args, local, header)
        result = _score_rows(args, model)
        if run is not None:
            run.outcome = f"scored {count_rows(result['rows'])} with {args.model}"
            run.lines = [f"scored {count_rows(result['rows'])} with {args.model} into {args.out}"]
            run.markdown = _score_markdown(result, model_run_id)
    print(
        f"clusterflow: scored {count_rows(result['rows'])} with {args.model}; wrote {result['out']}"
    )
    for line in score_notes(result):
        print(f"  {line}")
    if run is not None:
        from clusterflow_cli.links import flow_run_lines

        for line in flow_run_lines(run.id):
            print(line)
    return 0


def _check_score(args: argparse.Namespace) -> tuple[list[str], Any]:
    """Check the file, the Dask address and the model before any work; return header and model."""
    from clusterflow.scoring import find_registered_model
    from clusterflow_cli.preflight import (
        check_dask_address,
        check_file,
        check_model_uri,
        check_output,
    )

    if not str(args.out).lower().endswith(".csv"):
        from clusterflow.errors import ConfigError

        raise ConfigError(
            f"--out {args.out}: score writes CSV (<id>,cluster per row)",
            hint="give --out a name ending in .csv",
        )
    check_not_the_input(args.out, args.data)
    check_output(args.out)
    header = check_file(args.data, id_column=args.id_column, partitioned=bool(args.dask_address))
    check_dask_address(args.dask_address)
    local = find_registered_model(args.model, args.workspace)
    if local is None:
        check_model_uri(args.model, args.workspace)  # through MLflow (another kind of store)
    return header, local


def _load_score_model(args: argparse.Namespace, local: Any, header: list[str]) -> tuple[Any, Any]:
    """Load the model (from the local registry when found there) and check the file's columns."""
    import pandas as pd

    if local is not None:
        model, model_run_id = local.load(), local.run_id
    else:
        from clusterflow.model_registry import load_cluster_model

        model, model_run_id = load_cluster_model(args.model)
    model.check_columns(pd.DataFrame(columns=header), source=Path(args.data).name)
    return model, model_run_id


def _score_rows(args: argparse.Namespace, model: Any) -> dict:
    """Score the file in this process, or partitioned on a Dask cluster when one is named."""
    options = {
        "out": args.out,
        "model_uri": args.model,
        "workspace": args.workspace,
        "id_column": args.id_column,
        "details": args.details,
    }
    if args.dask_address:
        from clusterflow.distributed import dask_client
        from clusterflow.partitioned import score_partitioned

        with dask_client(args.dask_address) as client:
            return score_partitioned(model, args.data, client=client, **options)
    from clusterflow.io import read_table
    from clusterflow.scoring import score_id_column, score_table

    id_column = score_id_column(model, args.id_column)
    frame = read_table(args.data, text_columns=(id_column,) if id_column else ())
    return score_table(model, frame, source=Path(args.data).name, **options)


def _score_markdown(result: dict, model_run_id: str | None) -> str:
    """Return the summary a recorded scoring run shows in the Prefect UI (markdown)."""
    sizes = "\n".join(f"| {k} | {v} |" for k, v in result["cluster_sizes"].items())
    return (
        f"# Scored {result['rows']} rows\n\n"
        f"- model: `{result['model_uri']}` (MLflow run `{model_run_id or '-'}`)\n"
        f"- output: `{result['out']}`\n"
        f"- novel rows (farther from their centre than the training rows were): "
        f"{result['novel']}\n\n| cluster | rows |\n|---|---|\n{sizes}\n"
    )


def cmd_monitor(args: argparse.Namespace) -> int:
    """Compare a new batch with the model's reference; exit 0 whether or not it drifted.

    Drift is a finding (drift.json says ``"drift_detected": true`` and the event is emitted),
    not an error: the exit status is non-zero only when monitoring itself failed.
    """
    from clusterflow.config import MonitorConfig
    from clusterflow.model import check_input_columns
    from clusterflow.scoring import count_rows, find_registered_model
    from clusterflow_cli.console import say, stage_bars, terminal
    from clusterflow_cli.options import build_config
    from clusterflow_cli.preflight import (
        check_dask_address,
        check_file,
        check_model_uri,
        check_output,
    )
    from clusterflow_cli.server import prefect_api

    check_output(args.out, folder=True)
    header = check_file(args.data, partitioned=bool(args.dask_address))
    check_model_uri(args.model, args.workspace)
    local = find_registered_model(args.model, args.workspace)
    if local is not None and header:  # a model found without MLflow: its columns, from its spec
        check_input_columns(local.roles(), header, Path(args.data).name)
    dask_address = check_dask_address(args.dask_address)
    config = build_config(
        "monitor",
        MonitorConfig,
        data=str(args.data),
        out_dir=args.out,
        model_uri=args.model,
        emit_event=not args.no_event,
        workspace=args.workspace,
        random_state=getattr(args, "seed", 0) or 0,
    )
    with prefect_api(args.workspace, echo=say) as api_url:
        from clusterflow_orchestration.flows.monitoring import monitoring_flow

        with (
            contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext(),
            stage_bars(),
        ):
            data = monitoring_flow(config=config, dask_address=dask_address)
    if args.json:
        print(json.dumps(data, default=str))
        _print_drift_reaction(data, args.model, api_url, terminal())
        return 0
    rows = data.get("rows", {})
    verdict = "DRIFT DETECTED" if data["drift_detected"] else "no drift"
    compared = rows.get("compared", "?")
    print(
        f"clusterflow: {verdict} in {args.data} against {args.model} "
        f"({count_rows(compared)} compared, "
        f"{rows.get('quarantined', 0)} quarantined); "
        f"report: {Path(data['out_dir']) / 'drift_report.html'}"
    )
    for reason in data.get("reasons", [])[:10]:
        print(f"  - {reason}")
    _print_drift_reaction(data, args.model, api_url, sys.stdout)
    return 0


def _print_drift_reaction(data: dict, model_uri: str, api_url: str, stream) -> None:
    """Say which automation (if any) on ``api_url`` reacts to the drift event just emitted.

    ``api_url`` is the Prefect API the flow reported to (a found stack too, not only an
    exported ``PREFECT_API_URL``).
    """
    from clusterflow_cli.links import drift_reaction_lines

    environ = {"PREFECT_API_URL": api_url}
    for line in drift_reaction_lines(model_uri, bool(data.get("event_emitted")), environ):
        print(line, file=stream)


COMMANDS = {"impute": cmd_impute, "score": cmd_score, "monitor": cmd_monitor}
