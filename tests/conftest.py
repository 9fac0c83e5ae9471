"""Shared fixtures: real Prefect (test harness) and a real MLflow store under tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
BUNDLED_DATA = ROOT / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def shared(name: str) -> Path:
    """A data set of ../shared/data, skipping the test (loudly) when it is not there."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found: these tests need ../shared/data beside the repository")
    return path


def bundled(name: str) -> Path:
    """A data set shipped in the repository's data/ folder."""
    return BUNDLED_DATA / name


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect server and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
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
