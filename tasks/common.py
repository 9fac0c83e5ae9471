"""What every task shares: the stage store of a workspace, retry rules, artifact helpers."""

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
