"""Where the Dask work runs: one parser for ``--dask-address`` and the client it names.

``tcp://host:8786`` (any scheme dask understands) is a running scheduler; ``local`` or ``local:N``
starts a temporary ``LocalCluster`` of N worker processes (default 2) for the duration of a run.
The CLI, the deployments' task runner and ``serve`` all parse the address here, so ``local:3``
means three workers everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from clusterflow.errors import ConfigError

DEFAULT_LOCAL_WORKERS = 2


@dataclass(frozen=True)
class DaskAddress:
    """A parsed ``--dask-address``: a scheduler address, or a local cluster of ``n_workers``."""

    address: str | None
    n_workers: int = DEFAULT_LOCAL_WORKERS

    @property
    def local(self) -> bool:
        """Whether a temporary LocalCluster is started."""
        return self.address is None


def parse_dask_address(value: str) -> DaskAddress:
    """Parse ``local``, ``local:N`` or a scheduler address.

    Raises
    ------
    ConfigError
        If ``value`` is empty, ``local:N`` does not name a positive worker count, or a scheduler
        address has no host and port.
    """
    text = (value or "").strip()
    if not text:
        raise ConfigError("the Dask address is empty", hint="use local, local:N or tcp://host:8786")
    if text == "local":
        return DaskAddress(None)
    if text.startswith("local:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(
                f"bad Dask address {text!r}: {count!r} is not a worker count",
                hint="write local:N with N >= 1, e.g. local:4",
            )
        return DaskAddress(None, int(count))
    _, _, where = text.rpartition("://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"bad Dask address {text!r}: a scheduler address needs a host and a port",
            hint="use local, local:N or tcp://host:8786",
        )
    return DaskAddress(text)


@contextmanager
def dask_client(
    address: str | DaskAddress,
    *,
    memory_limit: str | int | None = None,
    threads_per_worker: int = 1,
) -> Iterator:
    """Yield a ``distributed.Client`` on the named cluster (a LocalCluster is closed after).

    Parameters
    ----------
    address : str or DaskAddress
        As accepted by :func:`parse_dask_address`.
    memory_limit : str or int, optional
        Per-worker memory limit of a local cluster (``"1GiB"``); None: dask's default share.
    threads_per_worker : int, default=1
        Threads of each local worker (one: the encoder and BLAS use their own threads).
    """
    from distributed import Client, LocalCluster

    parsed = parse_dask_address(address) if isinstance(address, str) else address
    if not parsed.local:
        try:
            client = Client(parsed.address)
        except OSError as err:  # refused, or timed out (distributed's connect timeout, 30 s)
            raise ConfigError(
                f"cannot reach the Dask scheduler at {parsed.address} "
                f"({' '.join(str(err).split())[:160]})",
                hint="start the scheduler, check the address, or use --dask-address local:N",
            ) from err
        with client:
            yield client
        return
    kwargs = {"memory_limit": memory_limit} if memory_limit is not None else {}
    with (
        LocalCluster(
            n_workers=parsed.n_workers,
            processes=True,
            threads_per_worker=threads_per_worker,
            dashboard_address=None,
            **kwargs,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
