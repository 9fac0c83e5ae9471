"""Save and load the fitted components of a model with skops (no pickle, no joblib).

Loading refuses any type that skops does not trust by itself unless it is one of
:func:`allowed_types`: exactly the clusterflow and library types a clusterflow model holds.
:func:`_skops_io` imports skops without pulling in torch or dask, which a table-only command does
not need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clusterflow.errors import ValidationFailed

_ALLOWED_LIBRARY_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.impute._iterative.IterativeImputer",
        "sklearn.impute._iterative._ImputerTriplet",
        "sklearn.tree._tree.Tree",  # the trees of the 'forest' imputer's ExtraTreesRegressor
    }
)
"""Library types a model holds that skops does not trust by default."""


def allowed_types() -> frozenset[str]:
    """Return the types a saved model may hold beyond skops' defaults, by qualified name.

    The clusterflow classes are named through the classes themselves, so the list follows a
    module that moves.
    """
    from clusterflow.cluster.algorithms import Candidate
    from clusterflow.cluster.evidence import Reducer
    from clusterflow.cluster.selection import Alternative, Selection
    from clusterflow.cluster.sweep import ClusterSweep
    from clusterflow.features import FeatureBuilder
    from clusterflow.impute import FastKNNImputer, TableImputer
    from clusterflow.impute._iterative import _IterativeTableImputer
    from clusterflow.impute._selection import _MeanImputer
    from clusterflow.impute._simple import _ColumnStatisticImputer

    ours = (
        FeatureBuilder,
        TableImputer,
        FastKNNImputer,
        _ColumnStatisticImputer,
        _IterativeTableImputer,
        _MeanImputer,
        ClusterSweep,
        Candidate,
        Reducer,
        Selection,
        Alternative,
    )
    named = {f"{c.__module__}.{c.__qualname__}" for c in ours}
    return _ALLOWED_LIBRARY_TYPES | named | _LEGACY_NAMES


_LEGACY_NAMES = frozenset(
    {"clusterflow.sweep.ClusterSweep", "clusterflow.sweep._Model", "clusterflow.sweep._Reducer"}
)
"""Where models saved before the sweep moved to clusterflow.cluster name its classes (the old
module keeps these names as aliases of the moved classes)."""


class _NoArrayLibraries:
    """Import finder that refuses optional array libraries in one thread (see :func:`_skops_io`).

    Only the thread importing skops is refused: another thread (the embedding task runs beside
    the imputation task) may import torch at the same time and must get it.
    """

    LIBRARIES = ("torch", "dask", "cupy", "jax")

    def __init__(self, refused: tuple[str, ...]) -> None:
        import threading

        self.refused = refused
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path=None, target=None):  # noqa: D102 - importlib protocol
        import threading

        if name.split(".", 1)[0] in self.refused and threading.get_ident() == self.thread:
            raise ImportError(f"{name} is not needed to read or write fitted components")


def _skops_io():
    """Import ``skops.io`` without importing torch or dask (unless one of them is loaded already).

    skops lists its trusted types with scikit-learn's ``all_estimators()``, which imports every
    scikit-learn module, and among them ``sklearn.externals.array_api_compat.torch`` and
    ``.dask.array``, which import torch and dask.array: seconds and hundreds of MB for scoring a
    table (measured on penguins: dask.array alone was a third of the import of skops, see the
    README's command-line section). The walk skips modules that fail to import, so those
    libraries are made unimportable for the duration of that one import; no fitted component of a
    clusterflow model holds one of their types.
    """
    import sys

    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    refused = tuple(n for n in _NoArrayLibraries.LIBRARIES if n not in sys.modules)
    blocker = _NoArrayLibraries(refused)
    sys.meta_path.insert(0, blocker)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(blocker)
        # The array-api shims that failed half-way must not stay half-imported. ``list()`` copies
        # the keys at once: another thread (embedding beside imputation) may be importing.
        shims = tuple(f"sklearn.externals.array_api_compat.{lib}" for lib in refused)
        inside = tuple(f"{shim}." for shim in shims)
        for name in list(sys.modules):
            if name in shims or name.startswith(inside):
                sys.modules.pop(name, None)
    return skops.io


def dump_component(obj: Any, stem: Path) -> str:
    """Save ``obj`` as ``stem.skops`` and check that it loads back.

    Returns the format used: ``"skops"``, or ``"none"`` when ``obj`` is None.

    Raises
    ------
    ValidationFailed
        If skops cannot represent ``obj`` or it holds a type outside :func:`allowed_types`
        (a bug: a new component needs its types listed).
    """
    if obj is None:
        return "none"
    sio = _skops_io()

    path = stem.with_suffix(".skops")
    try:
        sio.dump(obj, path)
    except Exception as err:  # skops raises TypeError/NotImplementedError/... for unknown state
        path.unlink(missing_ok=True)
        raise ValidationFailed(
            f"cannot save {stem.name} ({type(obj).__name__}) with skops: {err}",
            hint="report this as a bug: every fitted part must be representable by skops",
        ) from err
    load_component(stem, "skops")  # a dump that does not load back is no dump
    return "skops"


def load_component(stem: Path, fmt: str) -> Any:
    """Read a component written by :func:`dump_component`.

    Raises
    ------
    ValidationFailed
        If the file holds a type outside skops' defaults and :func:`allowed_types`, or the
        format is not skops (older models saved with joblib are not loaded).
    """
    if fmt == "none":
        return None
    if fmt != "skops":
        raise ValidationFailed(
            f"{stem}: saved as {fmt!r}; only skops files are loaded (no pickle, no joblib)",
            hint="retrain the model with this version of clusterflow",
        )
    sio = _skops_io()

    path = stem.with_suffix(".skops")
    # One pass: skops audits the file against the allowed types while it loads it. Listing the
    # untrusted types first built and audited the whole tree twice: a penguins imputer took
    # 0.64 s to load that way, 0.33 s in one pass (benchmarks/artifact_io.py). The types are
    # listed again only to word a refusal.
    allowed = allowed_types()
    try:
        return sio.load(path, trusted=sorted(allowed))
    except sio.exceptions.UntrustedTypesFoundException as err:
        refused = sorted(set(sio.get_untrusted_types(file=path)) - allowed)
        raise ValidationFailed(
            f"{path}: refuses to load type(s) {refused}: not among the types a clusterflow model "
            "holds",
            hint="only load models that clusterflow wrote; the allowed types are listed in the "
            "README (Registry)",
        ) from err
