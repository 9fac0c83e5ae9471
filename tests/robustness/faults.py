"""Run ``clusterflow train`` in this process with a fault installed: a SIGKILL at a named point.

Used by the crash tests as ``python -m tests.robustness.faults KILL_POINT BARRIER -- <train args>``
(``-`` for none). The process is started in its own session; the kill takes down the whole process
group, as a machine losing power would. The Prefect server that ``train`` keeps running for the
workspace has its own session and survives (the rerun reuses it; tests/robustness/conftest.py
stops it after the test).

Kill points inside a stage fire while the stage's temporary folder holds its (partial) output,
right before it would be marked complete. Kill points inside registration follow the sequence of
:func:`clusterflow.registration.register_training`. ``BARRIER`` (``<dir>:<n>``) holds every
training after its version is registered until ``n`` trainings got there, so that all of them
were gated against the same champion and all but the first must gate again.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

STAGES = ("ingest", "validate", "impute", "embed", "sweep")
REGISTRATION_POINTS = (
    "register:after-run-record",  # the MLflow run is logged, nothing registered yet
    "register:after-version-created",  # the version exists (pending), the alias did not move
    "register:before-alias-move",  # inside the lock, gate re-checked, alias about to move
    "register:inside-alias-move",  # the alias moved, the version is still tagged pending
)
KILL_POINTS = tuple(f"stage:{s}" for s in STAGES) + REGISTRATION_POINTS


def die() -> None:
    """SIGKILL the whole process group now."""
    sys.stdout.flush()
    os.killpg(os.getpgid(0), signal.SIGKILL)


def install_kill(point: str) -> None:
    """Patch the library so that the process dies at ``point``."""
    from clusterflow import registration
    from clusterflow.store import StageStore

    kind, _, where = point.partition(":")
    if kind == "stage":
        real = StageStore.writing

        @contextmanager
        def writing(self, stage, key):
            with real(self, stage, key) as tmp:
                yield tmp
                if stage == where:
                    die()  # the output is written but not complete

        StageStore.writing = writing
        return

    def after(fn):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            die()
            return out

        return wrapped

    def before(fn):
        def wrapped(*args, **kwargs):
            die()
            return fn(*args, **kwargs)

        return wrapped

    if where == "after-run-record":
        registration._log_run_record = after(registration._log_run_record)
    elif where == "after-version-created":
        registration.log_model_version = after(registration.log_model_version)
    elif where == "before-alias-move":
        registration.set_alias = before(registration.set_alias)
    elif where == "inside-alias-move":
        registration.set_alias = after(registration.set_alias)
    else:
        raise ValueError(f"unknown kill point {point!r}")


def install_barrier(spec: str) -> None:
    """Hold each training after registering its version until ``n`` trainings got there."""
    from clusterflow import registration

    folder, _, n = spec.rpartition(":")
    real = registration.log_model_version

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        Path(folder, f"{os.getpid()}").write_text("registered\n")
        deadline = time.monotonic() + 1200
        while len(list(Path(folder).iterdir())) < int(n) and time.monotonic() < deadline:
            time.sleep(0.2)
        return out

    registration.log_model_version = wrapped


def main(argv: list[str]) -> int:
    """Install the faults named in ``argv`` and run the CLI with the rest."""
    point, barrier, sep, *rest = argv
    assert sep == "--", "usage: faults KILL_POINT BARRIER -- <clusterflow args>"
    if point != "-":
        install_kill(point)
    if barrier != "-":
        install_barrier(barrier)
    from clusterflow_cli.main import main as cli

    return cli(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
