"""Transient faults: the ingest task retries real I/O failures, never a user error."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterflow.errors import InputError
from tests.conftest import task_run_count
from tests.robustness.badfiles import good_frame


class FlakySource:
    """A READ_HOOKS hook: the first ``failures`` reads fail as a dropped NFS mount would."""

    def __init__(self, path: Path, failures: int) -> None:
        self.path = path
        self.failures = failures
        self.reads = 0

    def __call__(self, path: Path) -> None:
        if Path(path) != self.path:
            return
        self.reads += 1
        if self.reads <= self.failures:
            raise OSError(5, "Input/output error (injected)", str(path))


@pytest.fixture
def flaky(monkeypatch):
    """Install a FlakySource factory into clusterflow.io.READ_HOOKS for one test."""
    hooks: list = []
    # Replaced in the module whose read_table iterates it; clusterflow.io re-exports the name.
    monkeypatch.setattr("clusterflow.io._read.READ_HOOKS", hooks)

    def install(path: Path, failures: int) -> FlakySource:
        hook = FlakySource(path, failures)
        hooks.append(hook)
        return hook

    return install


def test_ingest_survives_two_failed_reads(tmp_path, flaky, prefect_harness):
    from tasks.ingest import ingest_task

    data = tmp_path / "records.csv"
    good_frame().to_csv(data, index=False)
    source = flaky(data, failures=2)

    state = ingest_task(str(data), str(tmp_path / "ws"), return_state=True)

    assert state.is_completed(), state
    snapshot = state.result()
    assert snapshot.n_rows == len(good_frame())
    assert source.reads == 3
    assert task_run_count(state) == 3


def test_ingest_gives_up_after_its_retries(tmp_path, flaky, prefect_harness):
    from tasks.ingest import ingest_task

    data = tmp_path / "records.csv"
    good_frame().to_csv(data, index=False)
    source = flaky(data, failures=10)

    state = ingest_task(str(data), str(tmp_path / "ws"), return_state=True)

    assert state.is_failed()
    assert source.reads == 4  # the first try and three retries
    with pytest.raises(OSError, match="injected"):
        state.result()
    assert not list((tmp_path / "ws" / "stages").glob("ingest/*/_COMPLETE"))


def test_user_error_is_not_retried(tmp_path, flaky, prefect_harness):
    from tasks.ingest import ingest_task

    data = tmp_path / "header.csv"
    data.write_text("x,y\n")
    source = flaky(data, failures=0)

    state = ingest_task(str(data), str(tmp_path / "ws"), return_state=True)

    assert state.is_failed()
    assert source.reads == 1
    assert task_run_count(state) == 1
    with pytest.raises(InputError, match="no data rows"):
        state.result()
