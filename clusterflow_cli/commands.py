"""The impute, score and monitor subcommands (train lives in main)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path


def cmd_impute(args: argparse.Namespace) -> int:
    """Fill gaps the way training would and write the full table (same rows, columns, order)."""
    from clusterflow.errors import InputError
    from clusterflow.impute import TableImputer
    from clusterflow.io import atomic_path, read_table
    from clusterflow.schema import coerce_numeric, infer_roles

    frame = read_table(args.data)
    roles = infer_roles(
        frame,
        text_column=args.text_column,
        id_column=args.id_column,
        exclude_columns=args.exclude_columns,
        source=Path(args.data).name,
    )
    out = frame.copy()
    if roles.features:
        table = coerce_numeric(frame[list(roles.features)], roles)
        imputer = TableImputer(
            method=args.method,
            numeric_columns=list(roles.numeric),
            categorical_columns=list(roles.categorical),
            random_state=args.seed,
        ).fit(table)
        filled = imputer.transform(table)
        for column in roles.features:
            out[column] = filled[column]
    target = Path(args.out)
    with atomic_path(target) as tmp:
        name = target.name.lower()
        if name.endswith((".parquet", ".pq")):
            out.to_parquet(tmp, index=False)
        elif name.endswith((".jsonl", ".ndjson")):
            out.to_json(tmp, orient="records", lines=True)
        elif name.endswith((".csv", ".csv.gz")):
            out.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)
        else:
            raise InputError(
                f"{target}: unsupported output type", hint="write .csv, .csv.gz, .parquet or .jsonl"
            )
    summary = {
        "rows": len(out),
        "filled_cells": int(frame[list(roles.features)].isna().sum().sum())
        if roles.features
        else 0,
        "out": str(target),
        "method": getattr(imputer, "method_", None) if roles.features else None,
        "untouched_columns": sorted(roles.excluded),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"clusterflow: filled {summary['filled_cells']} cells in {summary['rows']} rows "
            f"with {summary['method']}; wrote {target}"
        )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Assign clusters with a registered model."""
    from clusterflow.config import ScoreConfig
    from flows.scoring import scoring_flow

    config = ScoreConfig(
        data=str(args.data),
        out=args.out,
        model_uri=args.model,
        id_column=args.id_column,
        details=args.details,
        workspace=args.workspace,
    )
    result = scoring_flow(config=config)
    print(f"clusterflow: scored {result['rows']} rows with {args.model}; wrote {result['out']}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """Compare a new batch with the model's reference; exit 0 whether or not it drifted.

    Drift is a finding (drift.json says ``"drift_detected": true`` and the event is emitted),
    not an error: the exit status is non-zero only when monitoring itself failed.
    """
    from clusterflow.config import MonitorConfig
    from flows.monitoring import monitoring_flow

    config = MonitorConfig(
        data=str(args.data),
        out_dir=args.out,
        model_uri=args.model,
        emit_event=not args.no_event,
        workspace=args.workspace,
        random_state=getattr(args, "seed", 0) or 0,
    )
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        data = monitoring_flow(config=config)
    if args.json:
        print(json.dumps(data, default=str))
        _print_drift_reaction(data, args.model, sys.stderr)
        return 0
    rows = data.get("rows", {})
    verdict = "DRIFT DETECTED" if data["drift_detected"] else "no drift"
    print(
        f"clusterflow: {verdict} in {args.data} against {args.model} "
        f"({rows.get('compared', '?')} rows compared, {rows.get('quarantined', 0)} quarantined); "
        f"report: {Path(data['out_dir']) / 'drift_report.html'}"
    )
    for reason in data.get("reasons", [])[:10]:
        print(f"  - {reason}")
    _print_drift_reaction(data, args.model, sys.stdout)
    return 0


def _print_drift_reaction(data: dict, model_uri: str, stream) -> None:
    """Say which automation (if any) reacts to the drift event just emitted."""
    from clusterflow_cli.links import drift_reaction_lines

    for line in drift_reaction_lines(model_uri, bool(data.get("event_emitted"))):
        print(line, file=stream)


COMMANDS = {"impute": cmd_impute, "score": cmd_score, "monitor": cmd_monitor}
