"""What every task shares: the stage store of a workspace, retry rules, artifact helpers.

Which tasks retry, and why
--------------------------
Only the tasks that read from outside the process retry, and only on ``OSError``
(:func:`retry_transient`): a network filesystem or a tracking server that hiccups recovers, a
wrong file or a missing model does not.

- ``ingest`` (training) and ``read-batch`` (scoring, monitoring): read the input file; 3 retries
  after 1, 2 and 5 s.
- ``load-model`` (scoring, monitoring): loads the model from the tracking server; 2 retries after
  2 and 5 s. ``recorded-settings`` (a drift retrain) reads the drifted model's ``config.json``
  from the same server, with the same policy.

Everything else never retries. The compute stages (validate, impute, embed, sweep) are
deterministic: the same input fails the same way again, and a finished stage is reused from the
store anyway. ``register`` is not retried blindly either: it creates a model version, and a
failure after that deletes the version and marks the run failed; rerunning the flow is the retry
(a version a killed run left ``pending`` is removed then).
"""

from __future__ import annotations

from pathlib import Path

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from clusterflow.errors import ClusterflowError
from clusterflow.store import StageStore


def stage_store(workspace: str) -> StageStore:
    """Return the content-addressed store of finished stages under a workspace."""
    return StageStore(Path(workspace) / "stages")


def retry_transient(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry I/O failures, never a user error: a wrong file does not fix itself on retry."""
    try:
        state.result()
    except ClusterflowError:
        return False
    except OSError:
        return True
    except Exception:  # anything else is a bug or a bad input: retrying hides it
        return False
    return False


def markdown_table(frame, *, floatfmt: str = ".4g", max_rows: int = 60) -> str:
    """Render a small frame as a markdown table (no extra dependency)."""
    import pandas as pd

    shown = frame.head(max_rows)
    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in shown.iterrows():
        cells = []
        for value in row.tolist():
            if isinstance(value, float):
                cells.append("" if pd.isna(value) else format(value, floatfmt))
            else:
                cells.append(str(value).replace("|", "\\|").replace("\n", " "))
        lines.append("| " + " | ".join(cells) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows not shown_")
    return "\n".join(lines)
