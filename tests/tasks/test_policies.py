"""Each task's retry and caching policy, against one table (issue 15).

Only the tasks that read from outside the process retry, and only on ``OSError``
(``clusterflow_orchestration.tasks.common``: a dropped mount recovers, a wrong file does not).
No task persists its result: a finished stage is reused from the workspace's stage store, so
Prefect's own cache (the default policy, keyed on inputs, task source and flow run) never serves
a result. The last tests run real tasks under the temporary Prefect server of the flow tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from prefect import Task, flow
from prefect.cache_policies import DEFAULT

import clusterflow_orchestration
from clusterflow import io as cf_io
from clusterflow.errors import InputError
from clusterflow_orchestration.tasks.common import retry_transient
from clusterflow_orchestration.tasks.score import read_batch_task
from tests.conftest import task_run_count
from tests.robustness.test_faults import FlakySource


@dataclass(frozen=True)
class Policy:
    """What a task declares about retries and caching."""

    retries: int = 0
    retry_delay_seconds: int | list[int] = 0
    retry_condition_fn: object = None
    cache_policy: object = field(default_factory=lambda: DEFAULT)
    persist_result: bool | None = None


READ_RETRIES = Policy(retries=3, retry_delay_seconds=[1, 2, 5], retry_condition_fn=retry_transient)
NEVER = Policy()
MODEL_READ = Policy(retries=2, retry_delay_seconds=[2, 5], retry_condition_fn=retry_transient)

POLICIES = {
    # reads from outside the process: retried on OSError
    "ingest": READ_RETRIES,
    "read-batch": READ_RETRIES,
    "load-model": MODEL_READ,
    "recorded-settings": MODEL_READ,  # a drift retrain reads the drifted model's config.json
    # deterministic compute: the same input fails the same way again
    "validate": NEVER,
    "impute": NEVER,
    "embed": NEVER,
    "sweep": NEVER,
    "partitioned-stages": NEVER,
    "drift": NEVER,
    "drift-partitioned": NEVER,
    "score": NEVER,
    # writes a model version: rerunning the flow is the retry (a pending version is removed)
    "register": NEVER,
    # writes the run's files, artifacts and events once
    "write-outputs": NEVER,
    "drift-report": NEVER,
    "emit-drift-event": NEVER,
}


def _declared_tasks() -> dict[str, Task]:
    """Every Prefect task defined in the orchestration package, by task name."""
    found: dict[str, Task] = {}
    package = clusterflow_orchestration
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Task) and value.fn.__module__ == module.__name__:
                assert value.name not in found, f"two tasks named {value.name}"
                found[value.name] = value
    return found


TASKS = _declared_tasks()


def test_the_table_names_every_task():
    assert sorted(TASKS) == sorted(POLICIES)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_task_declares_the_policy_of_the_table(name):
    task, expected = TASKS[name], POLICIES[name]
    assert task.retries == expected.retries
    assert task.retry_delay_seconds == expected.retry_delay_seconds
    assert task.retry_condition_fn is expected.retry_condition_fn
    assert task.cache_policy == expected.cache_policy
    assert task.persist_result is expected.persist_result


@pytest.fixture
def failing_reads():
    """Make the first reads of a file fail (``clusterflow.io.READ_HOOKS``) for one test.

    The hooks are appended to the library's own list and removed after, so they sit in the read
    path wherever ``read_table`` lives.
    """
    installed: list[FlakySource] = []

    def install(path: Path, failures: int) -> FlakySource:
        hook = FlakySource(path, failures)
        cf_io.READ_HOOKS.append(hook)
        installed.append(hook)
        return hook

    yield install
    for hook in installed:
        cf_io.READ_HOOKS.remove(hook)


def _batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]}).to_csv(path, index=False)
    return path


def test_a_read_that_fails_once_is_retried(prefect_harness, tmp_path, failing_reads):
    path = _batch(tmp_path)
    reads = failing_reads(path, failures=1)

    state = read_batch_task(str(path), return_state=True)

    assert state.is_completed(), state
    pd.testing.assert_frame_equal(state.result(), pd.read_csv(path))
    assert reads.reads == 2
    assert task_run_count(state) == 2


def test_a_user_error_is_not_retried(prefect_harness, tmp_path, failing_reads):
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    reads = failing_reads(path, failures=0)

    state = read_batch_task(str(path), return_state=True)

    assert state.is_failed()
    assert reads.reads == 1
    assert task_run_count(state) == 1
    with pytest.raises(InputError, match="no data rows"):
        state.result()


def test_prefect_does_not_serve_a_task_from_its_cache(prefect_harness, tmp_path, failing_reads):
    """The same read twice in one flow run reads twice: results are not persisted, so the
    default cache policy never hits (stages are reused from the stage store instead)."""
    path = _batch(tmp_path)
    reads = failing_reads(path, failures=0)

    @flow
    def read_twice(data: str) -> list[str]:
        first = read_batch_task(data, return_state=True)
        second = read_batch_task(data, return_state=True)
        return [first.name, second.name]

    assert read_twice(str(path)) == ["Completed", "Completed"]
    assert reads.reads == 2
