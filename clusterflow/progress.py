"""Progress of the long stages as plain events, for whoever listens (no Prefect, no terminal).

A stage calls :func:`report` as it advances (rows read, texts embedded, sweep candidates fitted,
registration steps); a front end (the command line's progress bars) subscribes with
:func:`listening`. Nobody listening costs one list lookup. Listeners run in the reporting
thread and must be quick; an exception in a listener is swallowed (progress must never fail a run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Progress", "listening", "report"]


@dataclass(frozen=True)
class Progress:
    """One step of a stage.

    Attributes
    ----------
    stage : str
        Stage name (``read``, ``validate``, ``impute``, ``embed``, ``sweep``, ``register``).
    done : int
        Units finished so far.
    total : int or None
        Units in all, when known.
    unit : str
        What is counted (rows, texts, candidates, steps).
    """

    stage: str
    done: int
    total: int | None = None
    unit: str = ""


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def report(stage: str, done: int, total: int | None = None, unit: str = "") -> None:
    """Tell every listener that ``stage`` has finished ``done`` of ``total`` units."""
    if not _listeners:
        return
    event = Progress(stage, int(done), None if total is None else int(total), unit)
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # noqa: BLE001, S110 - a broken display must not break a stage
            pass


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` with every :class:`Progress` event reported inside the block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
