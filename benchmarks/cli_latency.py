"""Command-line latency: `clusterflow` commands beside the bare MLflow pyfunc path, in one run.

Every figure is the wall time of a fresh process (what a user waits for), measured in the same
run on the same (shared, noisy) machine: compare the ratios, not the seconds.

- ``--help``;
- ``train penguins --no-register`` (and the registering ``train`` that makes the model to score);
- ``score`` of 344, 1,000 and 10,000 tabular rows, beside a fresh ``python -c`` that does only
  ``mlflow.pyfunc.load_model(uri).predict(pandas.read_csv(path))`` on the same file and model;
- with ``--server``, the same scores again while a local Prefect server runs and
  ``PREFECT_API_URL`` points at it.

Give several console scripts to compare checkouts in one run, measured in turn figure by figure
(so they share the machine's noise); the bare path uses the interpreter beside each script::

    python benchmarks/cli_latency.py --cli before=../main/.venv/bin/clusterflow \\
        --cli after=.venv/bin/clusterflow --server

``--breakdown`` also times, in fresh processes of the last script's interpreter, each step of
``score`` (imports, finding the model, loading it, reading, assigning and writing) and what the
older paths added (MLflow's client and pyfunc loader, importing Prefect): where the seconds of a
fresh process go. ``--score-only`` skips ``--help`` and ``train --no-register``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "penguins.csv"
MODEL = "models:/clusterflow@champion"
BARE = (
    "import sys, mlflow, pandas as pd; "
    "m = mlflow.pyfunc.load_model(sys.argv[1]); "
    "f = pd.read_csv(sys.argv[2]); "
    "f = f.astype({c: float for c in f.select_dtypes('number').columns}); "
    "print(len(m.predict(f)))"
)


BREAKDOWN = r"""
import sys, time
t0 = time.perf_counter()
def lap(name, t=[t0]):
    now = time.perf_counter()
    print(f"{name}\t{now - t[0]:.3f}", flush=True)
    t[0] = now
uri, data, out, workspace, extra = sys.argv[1:6]
import numpy, pandas; lap("import numpy, pandas")
import scipy.stats, sklearn.base; lap("import scipy.stats, sklearn")
from clusterflow.scoring import find_registered_model, score_table
lap("import clusterflow.scoring (pandera, pydantic)")
local = find_registered_model(uri, workspace); lap("find the model (SQLite, no MLflow)")
from clusterflow.model import _skops_io
_skops_io(); lap("import skops.io (its trusted-type walk)")
model = local.load(); lap("load the model's skops files")
from clusterflow.io import read_table
frame = read_table(data); lap("read the batch")
score_table(model, frame, out=out, model_uri=uri, workspace=workspace); lap("assign and write")
if extra == "mlflow":
    import mlflow; lap("[older path] import mlflow")
    mlflow.MlflowClient().get_model_version_by_alias(*uri[len("models:/"):].split("@"))
    lap("[older path] MLflow client: resolve the alias")
    mlflow.pyfunc.load_model(uri); lap("[older path] mlflow.pyfunc.load_model (model loaded again)")
elif extra == "prefect":
    import prefect, prefect.flows; lap("[older path] import prefect (flow engine)")
"""


def breakdown(cli: Path, env: dict, folder: Path, data: Path, repeats: int) -> list[dict]:
    """Time each step of scoring in fresh processes (fastest of ``repeats`` per step)."""
    python = str(cli.with_name("python"))
    best: dict[str, float] = {}
    order: list[str] = []
    start = run([python, "-c", "pass"], env, folder, repeats)
    best["python start"], order = start, ["python start"]
    for extra in ("mlflow", "prefect"):
        for _ in range(repeats):
            done = subprocess.run(
                [
                    python,
                    "-c",
                    BREAKDOWN,
                    MODEL,
                    str(data),
                    str(folder / "b.csv"),
                    str(folder / "ws"),
                    extra,
                ],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                sys.exit(f"breakdown failed:\n{done.stderr[-2000:]}")
            for line in done.stdout.splitlines():
                name, _, took = line.partition("\t")
                if name not in best:
                    order.append(name)
                best[name] = min(best.get(name, float("inf")), float(took))
    return [{"step": name, "seconds": best[name]} for name in order]


def run(cmd: list[str], env: dict, cwd: Path, repeats: int) -> float:
    """Return the fastest wall time of ``repeats`` runs of ``cmd`` (each must succeed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
        best = min(best, took)
    return best


def sized(rows: int, folder: Path) -> Path:
    """Write ``rows`` penguins rows (resampled with a seed beyond 344) and return the path."""
    frame = pd.read_csv(DATA)
    if rows != len(frame):
        pick = np.random.default_rng(0).choice(len(frame), size=rows, replace=rows > len(frame))
        frame = frame.iloc[pick].reset_index(drop=True)
    path = folder / f"penguins_{rows}.csv"
    frame.to_csv(path, index=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, env: dict, cli: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**env, "PREFECT_HOME": str(folder / "prefect-home")}
    log = open(folder / "prefect-server.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [str(cli.with_name("prefect")), "server", "start", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=3):
                return proc, url
        except OSError:
            time.sleep(1)
    proc.terminate()
    sys.exit("the Prefect server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cli",
        action="append",
        metavar="[LABEL=]PATH",
        help="console script(s) to measure; several are measured in turn, figure by figure",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per figure (fastest counts)")
    parser.add_argument("--server", action="store_true", help="also score with a running server")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each step of score (last --cli)"
    )
    parser.add_argument(
        "--score-only", action="store_true", help="skip --help and train --no-register"
    )
    args = parser.parse_args()
    clis = {}
    for item in args.cli or [str(ROOT / ".venv" / "bin" / "clusterflow")]:
        label, _, path = item.rpartition("=")
        clis[label or path] = Path(path).absolute()

    with tempfile.TemporaryDirectory(prefix="cli-latency-") as tmp:
        root = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        envs, folders = {}, {}
        for i, label in enumerate(clis):
            folder = root / f"cli{i}"
            folder.mkdir()
            folders[label] = folder
            envs[label] = {
                **base,
                "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
                "PREFECT_HOME": str(folder / "prefect-home"),
                "HF_HUB_OFFLINE": "1",
                # the original code's temporary server times out at 20 s on a busy machine
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            }
        figures: list[dict] = []
        steps: list[dict] = []
        try:
            measure_all(args, clis, envs, folders, root, figures)
            if args.breakdown:
                label = list(clis)[-1]
                steps = breakdown(
                    clis[label],
                    envs[label],
                    folders[label],
                    root / "penguins_1000.csv",
                    args.repeats,
                )
        finally:
            for label, cli in clis.items():  # a server a command left running (nothing else)
                subprocess.run(
                    [str(cli), "down", "--workspace", str(folders[label] / "ws")],
                    env=envs[label],
                    capture_output=True,
                )
        report(args, clis, figures, steps)


def measure_all(args, clis: dict, envs: dict, folders: dict, root: Path, figures: list) -> None:
    """Measure every figure for every console script, in turn."""

    def measure(name: str, make_cmd, bare_args=None, env_extra=None, repeats=args.repeats):
        for label, cli in clis.items():
            env = {**envs[label], **(env_extra or {}).get(label, {})}
            folder = folders[label]
            took = run(make_cmd(cli, folder), env, folder, repeats)
            bare = None
            if bare_args is not None:
                python = str(cli.with_name("python"))
                bare = run([python, "-c", BARE, *bare_args], env, folder, repeats)
            figures.append({"cli": label, "command": name, "seconds": took, "bare": bare})

    if not args.score_only:
        measure("--help", lambda cli, f: [str(cli), "--help"])
    train = ["train", str(DATA), "--exclude-columns", "species"]
    measure(
        "train penguins (registers)",
        lambda cli, f: [str(cli), *train, "--workspace", str(f / "ws"), "--out", str(f / "r")],
        repeats=1,
    )
    # another seed each time: the imputer and the sweep are fitted again, not reused
    seeds = iter(range(1, 1000))
    if not args.score_only:
        measure(
            "train penguins --no-register",
            lambda cli, f: [
                str(cli),
                *train,
                "--no-register",
                "--workspace",
                str(f / "ws"),
                "--seed",
                str(next(seeds)),
                "--out",
                str(f / "n"),
            ],
        )
    files = {n: sized(n, root) for n in (344, 1000, 10000)}
    score_files(measure, files, "")
    if args.server:
        score_with_servers(measure, files, clis, envs, folders)


def score_files(measure: Callable, files: dict[int, Path], suffix: str, env_extra=None) -> None:
    """Measure ``score`` of each sized file beside the bare pyfunc path on the same file.

    Parameters
    ----------
    measure : callable
        ``measure_all``'s ``measure(name, make_cmd, bare_args=..., env_extra=...)``.
    files : dict
        The batch to score for each row count.
    suffix : str
        Appended to each figure's name (the condition it is measured in).
    env_extra : dict, optional
        Extra environment variables per console script label.
    """
    for n, path in files.items():
        measure(
            f"score {n} rows{suffix}",
            lambda cli, f, path=path, n=n: [
                str(cli),
                "score",
                str(path),
                "--model",
                MODEL,
                "--out",
                str(f / f"scored_{n}.csv"),
                "--workspace",
                str(f / "ws"),
            ],
            bare_args=[MODEL, str(path)],
            env_extra=env_extra,
        )


def score_with_servers(
    measure: Callable, files: dict[int, Path], clis: dict, envs: dict, folders: dict
) -> None:
    """Start a Prefect server per console script, score again with it running, stop them."""
    servers = {}
    try:
        for label, cli in clis.items():
            servers[label] = start_server(folders[label], envs[label], cli)
        score_files(
            measure,
            files,
            " (server running)",
            {label: {"PREFECT_API_URL": url} for label, (_, url) in servers.items()},
        )
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)


def report(args, clis: dict, figures: list, steps: list) -> None:
    """Print the tables (and write the JSON)."""
    print(f"repeats: {args.repeats} (fastest shown); machine: shared, 2 cores, other jobs running")
    for label, cli in clis.items():
        print(f"  {label}: {cli}")
    print(f"{'command':34} {'cli':8} {'wall s':>7} {'bare s':>7} {'ratio':>6}")
    for fig in figures:
        bare = fig["bare"]
        extra = f"{bare:7.2f} {fig['seconds'] / bare:6.2f}" if bare else f"{'':7} {'':6}"
        print(f"{fig['command']:34} {fig['cli']:8} {fig['seconds']:7.2f} {extra}")
    if steps:
        print(f"\nwhere a fresh score process spends its time ({list(clis)[-1]}, 1,000 rows):")
        for step in steps:
            print(f"  {step['step']:52} {step['seconds']:6.2f}")
        ours = sum(s["seconds"] for s in steps if not s["step"].startswith("[older"))
        print(f"  {'total of the steps score takes':52} {ours:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "steps": steps}, indent=2))


if __name__ == "__main__":
    main()
