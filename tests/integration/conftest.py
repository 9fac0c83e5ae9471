"""Fixtures for the server tests: free ports, a tiny data file, cheap training parameters."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import bundled


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tiny_penguins(tmp_path) -> Path:
    """60 rows of the bundled penguins table (gaps kept), as CSV."""
    frame = pd.read_csv(bundled("penguins.csv")).sample(60, random_state=0)
    path = tmp_path / "penguins_tiny.csv"
    frame.to_csv(path, index=False)
    return path


def cheap_train_config(data: Path, workspace: Path, out_dir: Path, model_name: str) -> dict:
    """Training parameters that finish in seconds: one algorithm, k in 2..4, no resampling."""
    return {
        "data": str(data),
        "exclude_columns": ["species", "year"],
        "workspace": str(workspace),
        "out_dir": str(out_dir),
        "impute": {"method": "median"},
        "sweep": {"algorithms": ["kmeans"], "k_min": 2, "k_max": 4, "stability_resamples": 0},
        "registry": {"model_name": model_name, "experiment": model_name},
    }
