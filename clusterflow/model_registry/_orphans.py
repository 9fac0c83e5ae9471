"""Orphans: ``pending`` versions that a registration killed before its alias moved left behind."""

from __future__ import annotations

import logging
import os
import socket

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clusterflow.model_registry._store import redact
from clusterflow.model_registry._versions import delete_version, set_version_tag

logger = logging.getLogger(__name__)


STATE_TAG = "clusterflow.state"
"""``pending`` from the version's creation until its alias moved, then ``complete``."""
OWNER_TAG = "clusterflow.owner"
"""``<host>:<pid>`` of the process that registered the version."""
STALE_PENDING_S = 3600
"""A pending version whose owner cannot be checked (another host) is abandoned after this long:
registration takes seconds to minutes."""


def owner() -> str:
    """Return this process as a registry owner tag."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(tag: str | None) -> bool | None:
    """Return True if the owner process is dead, False if alive, None if it cannot be checked."""
    host, _, pid = (tag or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def clean_orphans(name: str, *, before_ms: int) -> list[str]:
    """Delete the ``pending`` versions that a dead registration left behind; return them.

    A version still ``pending`` and without alias, created before ``before_ms`` (this run's start)
    by a process that is gone (or, on another host, more than :data:`STALE_PENDING_S` earlier),
    is an orphan of a registration killed between version creation and alias move; its MLflow
    run is marked KILLED. A ``pending`` version that holds an alias was killed right after the
    alias moved: it is only re-tagged ``complete``.
    """
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    removed: list[str] = []
    pending = [v for v in versions if v.tags.get(STATE_TAG) == "pending"]
    if not pending:
        return removed
    # search results carry no aliases: read them from the registered model
    aliased = {str(v) for v in client.get_registered_model(name).aliases.values()}
    for found in pending:
        if str(found.version) in aliased:
            set_version_tag(name, found.version, STATE_TAG, "complete")
            continue
        created = int(found.creation_timestamp or 0)
        if created >= before_ms:
            continue
        gone = _owner_gone(found.tags.get(OWNER_TAG))
        if gone is False or (gone is None and before_ms - created < STALE_PENDING_S * 1000):
            continue
        logger.warning(
            "deleting orphan %s version %s (left pending by a killed run)", name, found.version
        )
        if delete_version(name, found.version):
            removed.append(str(found.version))
            _mark_killed(client, found.run_id)
    return removed


def _mark_killed(client: MlflowClient, run_id: str | None) -> None:
    if not run_id:
        return
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="KILLED")
    except MlflowException as err:
        logger.warning("could not mark run %s killed: %s", run_id, redact(str(err)))
