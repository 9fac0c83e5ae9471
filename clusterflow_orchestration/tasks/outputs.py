"""Outputs: the contract files of a run and the run's summary artifact."""

from __future__ import annotations

from dataclasses import asdict

from prefect import task
from prefect.artifacts import create_markdown_artifact

from clusterflow.cluster.selection import runner_up_figures
from clusterflow.outputs import imputer_text, write_run_outputs
from clusterflow.registration import Registration
from clusterflow.stages import Embedded, Imputed, Snapshot, Swept, Validated


def runner_ups_text(runner_ups: list[dict]) -> str:
    """One line: the coarser and finer alternatives with their evidence."""
    return "; ".join(
        f"{r['role']} {r['algorithm']} k={r['k']} ({runner_up_figures(r)})" for r in runner_ups
    )


def summary_markdown(summary: dict) -> str:
    """Render a short human summary of a run."""
    sizes = ", ".join(f"{k}: {v}" for k, v in summary["cluster_sizes"].items())
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in summary["metrics"].items() if v is not None)
    imputer = imputer_text(summary["imputer"], summary.get("categorical_imputer"))
    lines = [
        f"# clusterflow run {summary['run_id']}",
        f"- data: `{summary['data']}` ({summary['rows_in']} rows, "
        f"sha256 {summary['fingerprint'][:12]})",
        f"- clustered {summary['rows_clustered']}, quarantined {summary['rows_quarantined']}, "
        f"imputer {imputer}",
        f"- **{summary['algorithm']}**, k = **{summary['k']}** ({metrics})",
        f"- rule: {summary['selection_rule']}",
        f"- cluster sizes: {sizes}",
        f"- model: `{summary['model_uri']}` "
        f"({'promoted to champion' if summary['promoted'] else 'not promoted'}"
        f"{': ' + summary.get('promotion_reason', '') if summary.get('promotion_reason') else ''})",
        f"- outputs: `{summary['outputs']['assignments']}`",
    ]
    if summary.get("metrics_disagree"):
        lines.insert(5, f"- metrics disagree: {summary['metrics_disagree']}")
    if summary.get("runner_ups"):
        lines.insert(5, f"- runner-ups: {runner_ups_text(summary['runner_ups'])}")
    if summary["stages_reused"]:
        lines.append(f"- reused finished stages: {', '.join(summary['stages_reused'])}")
    lines.extend(_clusters_markdown(summary.get("clusters") or []))
    lines.extend(_stages_markdown(summary.get("stages") or {}))
    return "\n".join(lines)


def _clusters_markdown(clusters: list[dict]) -> list[str]:
    if not clusters:
        return []
    lines = ["", "## Clusters", "", "| cluster | rows | label | note |", "|---|---|---|---|"]
    for card in clusters:
        label = str(card.get("label") or "").replace("|", "\\|")
        lines.append(f"| {card['cluster']} | {card['size']} | {label} | {card.get('note') or ''} |")
    return lines


def _stages_markdown(stages: dict) -> list[str]:
    if not stages:
        return []
    lines = ["", "## Stages", "", "| stage | seconds | rows in | rows out | reused |"]
    lines.append("|---|---|---|---|---|")
    for name, info in stages.items():
        lines.append(
            f"| {name} | {info['seconds']:.2f} | {info['rows_in']} | {info['rows_out']} | "
            f"{'yes' if info.get('reused') else ''} |"
        )
    return lines


@task(name="write-outputs")
def outputs_task(
    out_dir: str,
    run_id: str,
    snapshot: Snapshot,
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    swept: Swept,
    registration: Registration | None,
    stages: dict | None = None,
) -> dict:
    """Write assignments.csv, quarantine.csv and summary.json; publish the summary."""
    summary = write_run_outputs(
        out_dir,
        snapshot=snapshot,
        validated=validated,
        imputed=imputed,
        embedded=embedded,
        swept=swept,
        registration=asdict(registration) if registration else None,
        run_id=run_id,
        stages=stages,
    )
    create_markdown_artifact(
        summary_markdown(summary), key="run-summary", description="What this training run found"
    )
    return summary
