"""Helpers shared by the imputers of this package."""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from joblib import effective_n_jobs
from sklearn import config_context, get_config
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

# Set in the threads of _thread_map: there the caller's thread already ignores ConvergenceWarning.
_WORKER = threading.local()


def _single_threaded_blas(method: _F) -> _F:
    """Run ``method`` with BLAS limited to one thread.

    Every matrix here is skinny (tens of columns). Multi-threaded BLAS gains nothing on such
    products but, on a busy machine, its spinning threads made small SVDs 50-70x slower
    (IterativeImputer on 5,000 x 20: 69 s with default threads, 0.9 s with one, measured on the
    2-core build machine under load).
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _thread_map(fn: Callable[[Any], _T], items: Sequence[Any], n_jobs: int | None) -> list[_T]:
    """Return ``[fn(item) for item in items]``, run on up to ``n_jobs`` threads, in order.

    ``n_jobs`` follows scikit-learn: None is one thread (unless a joblib ``parallel_config``
    says otherwise), -1 every core. The imputers' heavy work (tree building, BLAS products,
    neighbour searches) releases the GIL, so independent fits overlap on separate cores. Call it
    with BLAS already limited to one thread (``_single_threaded_blas``): the nested limits then
    restore that same state, whichever thread leaves last.

    ``warnings.catch_warnings`` saves and restores the process-wide filter list, so it is not
    safe in threads running side by side: the threads use :func:`_quiet_convergence`, which in
    a worker does nothing because this function ignores ``ConvergenceWarning`` around the whole
    map, from the calling thread. The caller's scikit-learn configuration (``set_config``) is
    applied in every thread, and an error names the item it came from.
    """
    workers = min(len(items), effective_n_jobs(n_jobs))
    if workers <= 1:
        return [fn(item) for item in items]
    config = get_config()

    def run(item: Any) -> _T:
        nested = getattr(_WORKER, "active", False)
        _WORKER.active = True
        try:
            with config_context(**config):
                return fn(item)
        except Exception as err:
            err.add_note(f"(while fitting {str(item)[:80]} on a worker thread)")
            raise
        finally:
            _WORKER.active = nested

    with contextlib.ExitStack() as stack:
        if not getattr(_WORKER, "active", False):
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", ConvergenceWarning)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(run, items))


@contextlib.contextmanager
def _quiet_convergence() -> Iterator[None]:
    """Ignore ``ConvergenceWarning`` in this block (already ignored in a ``_thread_map`` thread).

    ``IterativeImputer`` warns when ``max_iter`` ends before its tolerance; the result is still
    a valid imputation, and mask-and-score measures its quality directly.
    """
    if getattr(_WORKER, "active", False):
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _nan_means(X: np.ndarray) -> np.ndarray:
    """Column means over the known cells; 0 (the standardised centre) for an all-NaN column.

    Computed without ``np.nanmean``, whose all-NaN ``RuntimeWarning`` would need a
    ``catch_warnings`` (not thread-safe).
    """
    known = ~np.isnan(X)
    counts = known.sum(axis=0)
    sums = np.where(known, X, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.zeros(X.shape[1]), where=counts > 0)


class _AcceptsNaN:
    """Mixin of the imputers of the encoded matrix: NaN marks a gap, not an error.

    scikit-learn's input checks must therefore let NaN through. Place it before
    ``BaseEstimator`` in the bases.
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.allow_nan = True
        return tags
