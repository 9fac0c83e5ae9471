"""Task runners for the training flow: the default thread pool, or a Dask cluster.

The training flow submits imputation and embedding concurrently (``.submit``); with a
:class:`prefect_dask.DaskTaskRunner` those tasks run on ``dask.distributed`` workers instead of
threads of the flow process. Stage outputs go through the content-addressed store in the
workspace, so the workers must see the same workspace folder (a shared disk on a real cluster).
"""

from __future__ import annotations

import os
from typing import Any

from clusterflow.distributed import parse_dask_address

DASK_ADDRESS_ENV = "CLUSTERFLOW_DASK_ADDRESS"


def dask_task_runner(address: str | None = None, *, n_workers: int = 2, processes: bool = False):
    """Return a Dask task runner on ``address``, or on a temporary ``LocalCluster``.

    Parameters
    ----------
    address : str, optional
        Scheduler address of a running ``dask.distributed`` cluster (``tcp://host:8786``).
        ``None`` starts a ``LocalCluster`` for the duration of the flow run.
    n_workers : int, default=2
        Workers of the local cluster (ignored with ``address``).
    processes : bool, default=False
        Local workers as processes (True) or threads of the flow process (False: no pickling of
        the models between processes, the cheaper choice on a small machine).

    Returns
    -------
    prefect_dask.DaskTaskRunner
    """
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": n_workers,
            "processes": processes,
            "threads_per_worker": 1,
            "dashboard_address": None,
        },
    )


def task_runner_from_env(environ: dict[str, str] | None = None) -> Any | None:
    """Return the Dask runner named by ``CLUSTERFLOW_DASK_ADDRESS``, or None for the default.

    ``local`` (or ``local:N``) starts a LocalCluster with N workers (default 2); the address is
    parsed by :func:`clusterflow.distributed.parse_dask_address`, as everywhere else.
    """
    value = (environ if environ is not None else os.environ).get(DASK_ADDRESS_ENV, "").strip()
    if not value:
        return None
    return task_runner_for(value)


def task_runner_for(value: str):
    """Return the Dask runner for a ``--dask-address`` (see :func:`parse_dask_address`)."""
    parsed = parse_dask_address(value)
    return dask_task_runner(parsed.address, n_workers=parsed.n_workers)


def training_flow_on(task_runner=None):
    """Return the training flow running its tasks on ``task_runner`` (None: the default runner)."""
    from clusterflow_orchestration.flows.training import training_flow

    if task_runner is None:
        return training_flow
    return training_flow.with_options(task_runner=task_runner)
