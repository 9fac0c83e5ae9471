"""The identity of an input file: a digest of its bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def fingerprint(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 of the file's bytes: the identity of the data, whatever its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
