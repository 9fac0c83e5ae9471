"""The range of cluster counts a sweep tries, and the checks of the sweep's options."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from clusterflow.errors import ConfigError

__all__ = ["check_options", "default_k_max", "k_grid"]


def default_k_max(n_rows: int) -> int:
    """Return the default upper bound of the cluster count for ``n_rows`` rows.

    The rule is ``clip(floor(sqrt(n_rows / 2)), 10, 100)``, never more than ``n_rows - 1``.

    Parameters
    ----------
    n_rows : int
        Number of rows to cluster.

    Returns
    -------
    int
        The upper bound (at least 2 when ``n_rows >= 3``).
    """
    k = int(np.clip(np.floor(np.sqrt(max(n_rows, 0) / 2.0)), 10, 100))
    return max(1, min(k, n_rows - 1))


def k_grid(k_min: int, k_max: int, dense_until: int = 20, step: float = 1.1) -> list[int]:
    """Return the cluster counts to try: every k up to ``dense_until``, then ~10 % steps.

    Parameters
    ----------
    k_min, k_max : int
        Inclusive range.
    dense_until : int, default=20
        Every integer k up to this value is tried.
    step : float, default=1.1
        Growth factor of the grid above ``dense_until``.

    Returns
    -------
    list of int
        Sorted, unique, always containing ``k_min`` and ``k_max``.
    """
    ks = list(range(k_min, min(k_max, dense_until) + 1))
    k = float(max(dense_until, k_min))
    while k < k_max:
        k = max(k * step, k + 1)
        ks.append(min(int(round(k)), k_max))
    ks.append(k_max)
    return sorted(set(ks))


def check_options(
    *,
    algorithms: Iterable[str],
    known: Iterable[str],
    metric: str,
    noise: str,
    k_min: int,
    k_max: int | None,
    n: int,
) -> tuple[int, int]:
    """Check a sweep's options against ``n`` rows and return the range of k it will try.

    Raises
    ------
    ConfigError
        Naming the option that is wrong and what would fit.
    """
    algorithms, known = list(algorithms), list(known)
    unknown = [a for a in algorithms if a not in known]
    if unknown or not algorithms:
        raise ConfigError(
            f"unknown algorithms {unknown or algorithms}", hint=f"choose among {known}"
        )
    if metric not in ("auto", "cosine", "euclidean"):
        raise ConfigError(f"metric must be auto, cosine or euclidean, got {metric!r}")
    if noise not in ("assign", "keep"):
        raise ConfigError(f"noise must be 'assign' or 'keep', got {noise!r}")
    if k_min < 2:
        raise ConfigError(f"k_min must be at least 2, got {k_min}")
    if n < max(k_min, 3):
        raise ConfigError(
            f"only {n} rows to cluster, fewer than k_min={k_min} (or 3)",
            hint="pass more rows or lower --k-min",
        )
    upper = default_k_max(n) if k_max is None else int(k_max)
    upper = min(upper, n - 1)
    if k_min > upper:
        raise ConfigError(
            f"k_min={k_min} is larger than k_max={upper} (n_rows={n})",
            hint="lower --k-min or raise --k-max",
        )
    return int(k_min), upper
