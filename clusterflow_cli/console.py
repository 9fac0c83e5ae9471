"""What the terminal shows: clusterflow's own lines by default, Prefect's with ``--verbose``.

Three levels, set once per process before Prefect is imported (Prefect reads its logging
settings from the environment when it configures logging):

- default: progress bars for the long stages (on a terminal only) and the final summary; Prefect's
  console handler is silenced, warnings are not shown; errors end in one line from ``main``;
- ``--verbose``: Prefect's INFO lines (flow and task runs) and clusterflow's own log lines too;
- ``--debug``: everything at DEBUG, and tracebacks.

The Prefect API handler is not touched: every run's logs still reach the Prefect UI.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

QUIET, VERBOSE, DEBUG = 0, 1, 2

_LABELS = {
    "read": "reading rows",
    "validate": "validating",
    "impute": "imputing gaps",
    "embed": "embedding texts",
    "sweep": "sweeping candidates",
    "register": "registering",
}


def configure(level: int) -> None:
    """Set logging, warnings and third-party progress output for ``level`` (before imports)."""
    env = os.environ
    for key, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("TOKENIZERS_PARALLELISM", "false"),
        # The ephemeral Prefect server's telemetry races its own SQLite and logs a traceback.
        ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ):
        env.setdefault(key, value)
    env["PREFECT_LOGGING_LEVEL"] = "DEBUG" if level >= DEBUG else "INFO"  # what reaches the UI
    console_level = {QUIET: "CRITICAL", VERBOSE: "INFO", DEBUG: "DEBUG"}[level]
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = console_level
    env["MLFLOW_LOGGING_LEVEL"] = {QUIET: "WARNING", VERBOSE: "INFO", DEBUG: "DEBUG"}[level]
    if level == QUIET:
        # tqdm bars of libraries (Hugging Face downloads, weight loading) and their warnings
        env.setdefault("TQDM_DISABLE", "1")
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        env.setdefault("TRANSFORMERS_VERBOSITY", "error")
        # MLflow writes "View run ... / View experiment ..." to stdout on a tracking server;
        # train prints its own links last, and under --json stdout is the JSON object alone.
        env.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        warnings.filterwarnings("ignore")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if level >= DEBUG else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(
        {QUIET: logging.CRITICAL + 1, VERBOSE: logging.INFO, DEBUG: logging.DEBUG}[level]
    )
    handler.set_name("clusterflow-console")
    for old in [h for h in root.handlers if h.get_name() == "clusterflow-console"]:
        root.removeHandler(old)
    root.addHandler(handler)
    for noisy in ("httpx", "urllib3", "alembic", "sentence_transformers", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level >= DEBUG else logging.WARNING)


def quiet_prefect_console() -> None:
    """Silence Prefect's console handler if Prefect configured logging before ``configure``.

    (In-process callers such as tests import Prefect first; the environment set by
    :func:`configure` only takes effect when Prefect sets up its logging afterwards.)
    """
    if "prefect" not in sys.modules:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(logging.CRITICAL)


_terminal = None


def terminal():
    """Return the real stderr (also while :func:`muffled` holds third-party output back)."""
    return _terminal or sys.stderr


def say(text: str) -> None:
    """Print one of clusterflow's own status lines (stderr: stdout is for results and --json)."""
    print(text, file=terminal(), flush=True)


@contextmanager
def muffled(enabled: bool = True) -> Iterator[io.StringIO]:
    """Hold back what libraries print on stderr themselves inside the block.

    Some print rather than log (MLflow's "Successfully registered model ..."); by default the
    terminal shows clusterflow's own lines only. Held-back text is yielded (``--verbose`` does not
    muffle at all); clusterflow's own lines go to :func:`terminal`.
    """
    global _terminal  # noqa: PLW0603 - the one process-wide terminal handle, restored on exit
    buffer = io.StringIO()
    if not enabled:
        yield buffer
        return
    _terminal, saved = sys.stderr, sys.stderr
    sys.stderr = buffer
    try:
        yield buffer
    finally:
        sys.stderr = saved
        _terminal = None


@contextmanager
def stage_bars(enabled: bool | None = None) -> Iterator[None]:
    """Show a rich progress bar per stage while the block runs (only on a terminal).

    Stages report through :mod:`clusterflow.progress`; each stage gets its own line with its
    count, rate and time left once a total is known.
    """
    if enabled is None:
        enabled = terminal().isatty()
    if not enabled:
        with nullcontext():
            yield
        return
    from clusterflow.progress import listening

    bars = _stage_progress()
    ids: dict[str, int] = {}

    def on_progress(event) -> None:
        if event.stage not in ids:
            ids[event.stage] = bars.add_task(
                _LABELS.get(event.stage, event.stage), total=event.total, unit=event.unit
            )
        bars.update(ids[event.stage], completed=event.done, total=event.total)

    with bars, listening(on_progress):
        yield


def _stage_progress():
    """Return the rich ``Progress`` of :func:`stage_bars`: label, bar, count, rate, eta, elapsed.

    rich is imported here, not at the top: the CLI's startup does not pay for it without a
    terminal.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task):  # noqa: D102 - rich column protocol
            from rich.text import Text

            speed = task.finished_speed or task.speed
            unit = task.fields.get("unit", "")
            return Text(f"{speed:,.0f} {unit}/s" if speed else "", style="progress.data.speed")

    return Progress(
        TextColumn("  [bold]{task.description:<20}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        Rate(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=Console(file=terminal()),
        transient=False,
    )
