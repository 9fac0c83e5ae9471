"""A content-addressed store of stage outputs: reruns reuse stages, crashes leave no debris.

Each stage output lives in ``<root>/<stage>/<key>/`` where the key hashes everything the output
depends on: the content hashes of its inputs, the stage's settings and the version of clusterflow's
code. A stage is written into a temporary folder and renamed into place only when complete, so an
interrupted run leaves nothing a later run would read, and two runs that compute the same stage at
once both succeed (the second rename finds the first one's result and discards its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

_DONE = "_COMPLETE"


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

    def key(self, stage: str, *inputs: object) -> str:
        """Return the key of ``stage`` computed from ``inputs`` and the code version."""
        return stable_hash(stage, code_version(), *inputs)

    def path(self, stage: str, key: str) -> Path:
        """Folder where the output of ``stage`` under ``key`` lives (complete or not)."""
        return self.root / stage / key

    def done(self, stage: str, key: str) -> bool:
        """Whether a complete output exists."""
        return (self.path(stage, key) / _DONE).exists()

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """Yield a fresh temporary folder; on success it becomes the stage's output atomically."""
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
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
