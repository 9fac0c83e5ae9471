"""Register: log the run to MLflow, register the model, gate it, move the alias."""

from __future__ import annotations

from datetime import datetime

from prefect import get_client, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.registration import Registration, register_training


def _prefect_tags() -> dict:
    flow_run_id = runtime.flow_run.id
    tags = {"prefect.flow_run_id": str(flow_run_id)} if flow_run_id else {}
    url = runtime.flow_run.ui_url
    if url:
        tags["prefect.flow_run_url"] = str(url)
    return tags


def _flow_run_start() -> datetime | None:
    """When the current flow run started, as the Prefect server recorded it."""
    flow_run_id = runtime.flow_run.id
    if not flow_run_id:
        return None
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).start_time


@task(name="register")
def register_task(
    config: TrainConfig,
    snapshot: stages.Snapshot,
    validated: stages.Validated,
    imputed: stages.Imputed,
    embedded: stages.Embedded | None,
    swept: stages.Swept,
) -> Registration:
    """Log and register the model; ``champion`` moves only when the gate is passed."""
    reg = register_training(
        config=config,
        snapshot=snapshot,
        validated=validated,
        imputed=imputed,
        embedded=embedded,
        swept=swept,
        tags=_prefect_tags(),
        run_name=runtime.flow_run.name or None,
        start_time=_flow_run_start(),
    )
    get_run_logger().info(
        "model %s (%s); %s", reg.model_uri, "champion" if reg.promoted else "challenger", reg.reason
    )
    create_markdown_artifact(key="challenger-gate", markdown=gate_markdown(reg))
    return reg


def gate_markdown(reg: Registration) -> str:
    """Return the gate decision, its evidence and the cluster-id map as a short markdown note."""

    def fmt(value: float | None, spec: str = ".4f") -> str:
        return "-" if value is None else format(value, spec)

    record = reg.gate
    interval = record.get("interval") or [None, None]
    mapping = ", ".join(f"{k} -> {v}" for k, v in reg.cluster_map.items()) or "-"
    return "\n".join(
        [
            f"# Gate: `{reg.model_uri}` {'promoted to champion' if reg.promoted else 'challenger'}",
            f"- outcome: **{record.get('outcome', '-')}**; reason: {reg.reason}",
            f"- score: {reg.gate_metric}",
            f"- challenger {fmt(reg.challenger_score)}, champion {fmt(reg.champion_score)} "
            f"(version {reg.previous_champion or '-'})",
            f"- challenger - champion: {fmt(record.get('difference'), '+.4f')}, 95% interval "
            f"[{fmt(interval[0], '+.4f')}, {fmt(interval[1], '+.4f')}] "
            f"({record.get('resamples', 0)} bootstrap resamples)",
            f"- rows used: {record.get('rows', 0)} held out from training; agreement of the two "
            f"assignments (ARI): {fmt(record.get('agreement_ari'))}",
            f"- cluster ids (sweep -> published): {mapping}; held-out rows keeping their id: "
            f"{fmt(reg.matched_share)}",
        ]
    )
