"""Digest of what ``clusterflow train`` writes, to show a refactor changes no output (issue 15).

Runs a checkout's CLI (``<python> -m clusterflow_cli.main``, cwd the checkout, so its code is
imported) on ``CASES`` (penguins as the tests run it; the demo as ``make demo``), each with
``--seed`` in a fresh temporary workspace: MLflow on SQLite in it, no ``MLFLOW_TRACKING_URI``,
``PREFECT_API_URL`` or Prefect profile; ``clusterflow down`` stops the Prefect server ``train``
starts, and the script checks it is gone. ``DIR/digests.json`` gets a SHA-256 of every file in
``--out``, every MLflow artifact (run and model) and the MLflow store's records, after normalising
only the volatile values below (``DIR/normalised/`` holds the texts, ``DIR/logs/`` the commands)::

    cd <checkout> && nice -n 15 <python> benchmarks/run_outputs_check.py --out /tmp/before
    <python> benchmarks/run_outputs_check.py --compare /tmp/before/digests.json after.json

``--compare`` prints the files that differ and exits 1 if any. Volatile (found by running one
commit twice and diffing); everything else must match byte for byte:

- the temporary folder, the checkout (``@tmp@``, ``@checkout@``), MLflow run and logged-model ids
  (``@mlflow-run-N@``, ``@mlflow-model-N@``) in texts and file names;
- ``VOLATILE_PATTERNS``: ``"seconds"`` values (summary.json, data_report.json), summary.json's
  ``run_id`` (start time, Prefect flow run), MLmodel's ``utc_time_created``, ``model_size_bytes``
  (of skops zips named by memory addresses) and ``clusterflow-*-XXXXXXXX`` temporary folders;
- ``VOLATILE_FIELDS``: the sweep table's ``seconds`` column, the imputer's ``seconds`` entries;
- skops zips by content: ``__id__`` values (memory addresses) renumbered in order, ``<id>.npy``
  members named by digest, padding bytes of structured arrays (uninitialised) left out;
- the MLflow store without timestamps, uuids, run names or ``VOLATILE_TAGS``.

Parquet by content (dtypes, categories, exact row hashes, the table as CSV), not the writer's
bytes; PNGs by bytes (deterministic: one commit's runs wrote identical PNGs). Left out: the stage
store, keyed by a hash of the code (what it caches reaches the outputs and the model). The OpenVINO
encoder cache (``~/.cache/clusterflow/encoders``) is shared unless ``--fresh-encoder-cache``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.recfunctions import repack_fields

DEFAULT_PYTHON = sys.executable  # the interpreter running this script (the checkout's venv)
CASES = {  # train's arguments; the demo's are those of `make demo` (Makefile)
    "penguins": "data/penguins.csv --exclude-columns species,year".split(),
    "demo": "data/birds_demo.csv --text-column remarks --id-column record_id "
    "--exclude-columns date,phase_of_flt".split(),
}
UNSET_ENV = frozenset(  # settings that would send a run elsewhere than its temporary workspace
    "MLFLOW_TRACKING_URI MLFLOW_REGISTRY_URI PREFECT_API_URL PREFECT_API_KEY "
    "PREFECT_PROFILES_PATH CLUSTERFLOW_ENCODER_CACHE".split()
)
VOLATILE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r'("seconds": )-?[0-9][0-9.eE+-]*', r"\1@seconds@"),
    (r'("run_id": )"[0-9]{8}T[0-9]{6}Z-[0-9a-f]+"', r'\1"@run-id@"'),
    (r"(?m)^(utc_time_created: ).*$", r"\1@time@"),
    (r"(?m)^(model_size_bytes: )[0-9]+$", r"\1@bytes@"),
    (r"(clusterflow-[a-z]+-)[a-z0-9_]{8}\b", r"\1@random@"),
)
VOLATILE_FIELDS = ("seconds",)  # CSV columns (the sweep table) and skops entries (imputer scores)
# Prefect's flow run, MLflow's random run name, user, git commit and branch, and "hostname:pid".
VOLATILE_TAGS = frozenset(
    "prefect.flow_run_id prefect.flow_run_url mlflow.runName mlflow.user "
    "mlflow.source.git.commit mlflow.source.git.branch clusterflow.owner".split()
)
# MLflow store records read (table: columns); logged_model_params/metrics copy params/metrics.
MLFLOW_RECORDS = {
    "experiments": "name, artifact_location, lifecycle_stage",
    "runs": "status, lifecycle_stage, artifact_uri",
    "params": "key, value",
    "metrics": "key, value, step",
    "tags": "key, value",
    "datasets": "name, digest, dataset_source, dataset_schema, dataset_profile",
    "logged_model_tags": "tag_key, tag_value",
    "model_versions": "name, version, current_stage, source, status, storage_location",
    "model_version_tags": "name, version, key, value",
    "registered_model_aliases": "name, alias, version",
}


def text_sha256(text: str) -> str:
    """Hex SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def normalise_text(text: str, literals: dict[str, str]) -> str:
    """Replace ``literals`` (exact strings: paths, MLflow ids) and ``VOLATILE_PATTERNS``."""
    for value in sorted(literals, key=len, reverse=True):
        text = text.replace(value, literals[value])
    for pattern, replacement in VOLATILE_PATTERNS:
        text = re.sub(pattern, replacement, text)
    return text


def normalise_csv(text: str) -> str:
    """Blank the ``VOLATILE_FIELDS`` cells of a CSV; unchanged if the file does not round-trip
    through csv.writer byte for byte (then its timings show as a difference)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not set(rows[0]) & set(VOLATILE_FIELDS):
        return text

    def write(table: list[list[str]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(table)
        return buffer.getvalue()

    if write(rows) != text:
        return text
    volatile = [i for i, name in enumerate(rows[0]) if name in VOLATILE_FIELDS]
    for row in rows[1:]:
        for i in volatile:
            row[i] = "@seconds@"
    return write(rows)


def member_digest(name: str, data: bytes) -> str:
    """SHA-256 of a file's bytes, or of an ``.npy`` array's dtype, shape and packed fields when
    its records have padding (uninitialised memory: scikit-learn's tree nodes, 57 of 64 bytes)."""
    if not name.endswith(".npy"):
        return hashlib.sha256(data).hexdigest()
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):  # not a plain array: compared by bytes
        return hashlib.sha256(data).hexdigest()
    packed = repack_fields(array) if array.dtype.names else array
    if packed.dtype.itemsize == array.dtype.itemsize:
        return hashlib.sha256(data).hexdigest()
    head = repr((array.dtype.descr, array.shape)).encode()
    return hashlib.sha256(head + np.ascontiguousarray(packed).tobytes()).hexdigest()


def canonical_skops(path: Path, keep_modules: bool = True) -> str:
    """Return a skops zip as canonical JSON: its schema, then members the schema does not name.

    ``keep_modules=False`` blanks ``__module__`` too: a digest that ignores where classes live.
    """
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    digests = {name: member_digest(name, data) for name, data in members.items()}
    ids: dict[Any, int] = {}
    named: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        return {k: entry(k, v) for k, v in node.items()} if isinstance(node, dict) else node

    def entry(key: str, value: Any) -> Any:
        if key == "__id__":
            return ids.setdefault(value, len(ids))
        if key == "file" and value in digests:
            named.add(value)
            return f"sha256:{digests[value]}"
        if key in VOLATILE_FIELDS and isinstance(value, dict) and "content" in value:
            return {**walk(value), "content": "@seconds@"}
        return "@module@" if key == "__module__" and not keep_modules else walk(value)

    schema = walk(json.loads(members["schema.json"]))
    rest = {n: d for n, d in sorted(digests.items()) if n not in named and n != "schema.json"}
    return json.dumps(schema, indent=1) + "\n" + json.dumps(rest, indent=1) + "\n"


def canonical_parquet(path: Path) -> str:
    """Return a Parquet file's content as text: dtypes, categories, an exact hash, the table."""
    frame = pd.read_parquet(path)
    categorical = frame.select_dtypes("category").columns
    rows = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    head = {
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "index": [str(frame.index.dtype), frame.index.name],
        "categories": {str(c): list(map(repr, frame[c].cat.categories)) for c in categorical},
        "row_hashes": hashlib.sha256(rows).hexdigest(),
    }
    return json.dumps(head, indent=1) + "\n" + frame.to_csv()


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a SQLite file."""
    db = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def mlflow_records(database: Path) -> str:
    """Return the MLflow store's records (``MLFLOW_RECORDS``) as JSON, volatile tags left out."""
    records: dict[str, Any] = {}
    for table, columns in MLFLOW_RECORDS.items():
        try:
            rows = query(database, f"select {columns} from {table}")  # noqa: S608 (constants)
        except sqlite3.Error as err:  # another MLflow schema: say so in the record
            records[table] = f"unreadable: {err}"
            continue
        kept = [list(r) for r in rows if not VOLATILE_TAGS.intersection(map(str, r))]
        records[table] = sorted(kept, key=repr)
    return json.dumps(records, indent=1) + "\n"


def mlflow_ids(database: Path) -> dict[str, str]:
    """Map each MLflow run id and logged-model id of the store to a numbered placeholder."""
    runs = query(database, "select run_uuid from runs order by start_time")
    models = query(database, "select model_id from logged_models order by creation_timestamp_ms")
    ids = {run: f"@mlflow-run-{i}@" for i, (run,) in enumerate(runs, 1)}
    return ids | {model: f"@mlflow-model-{i}@" for i, (model,) in enumerate(models, 1)}


def file_digest(path: Path, literals: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """Digest one output file; return its entry and the normalised text (None for binaries)."""
    suffix = path.suffix.lower()
    entry = {"kind": suffix[1:] if suffix in (".skops", ".parquet") else "text"}
    if suffix == ".skops":
        text = canonical_skops(path)
        loose = normalise_text(canonical_skops(path, keep_modules=False), literals)
        entry["sha256_ignoring_modules"] = text_sha256(loose)
    elif suffix == ".parquet":
        text = canonical_parquet(path)
    else:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:
            return {"kind": "bytes", "sha256": member_digest(path.name, data)}, None
        text = normalise_csv(text) if suffix == ".csv" else text
    text = normalise_text(text, literals)
    return {**entry, "sha256": text_sha256(text)}, text


def output_files(work: Path, literals: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """Yield (name in the digest, path) for the run's outputs and MLflow artifacts."""
    for folder, prefix in ((work / "out", "out"), (work / "ws" / "artifacts", "mlflow")):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            yield f"{prefix}/{normalise_text(path.relative_to(folder).as_posix(), literals)}", path


def digest_case(case: str, work: Path, checkout: Path, normalised: Path) -> dict[str, Any]:
    """Digest every output of one case's run folder; write the normalised texts."""
    database = work / "ws" / "mlflow.db"
    literals = {str(work): "@tmp@", str(checkout): "@checkout@", **mlflow_ids(database)}
    entries: dict[str, Any] = {}
    texts = {}
    for name, path in output_files(work, literals):
        entries[f"{case}/{name}"], texts[f"{case}/{name}"] = file_digest(path, literals)
    records = normalise_text(mlflow_records(database), literals)
    entries[f"{case}/mlflow.db.records"] = {"kind": "records", "sha256": text_sha256(records)}
    texts[f"{case}/mlflow.db.records"] = records
    for name, text in texts.items():
        if text is not None:
            target = normalised / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    return entries


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_prefect(cli: list[str], workspace: Path, run: Callable[..., Any]) -> list[int]:
    """Run ``clusterflow down`` for the workspace; return the recorded pids still alive after."""
    state = workspace / "stack" / "stack.json"  # where `train` records the server it started
    processes = json.loads(state.read_text()).get("processes", []) if state.exists() else []
    pids = [int(p["pid"]) for p in processes]
    run([*cli, "down", "--workspace", str(workspace)], "down")
    deadline = time.monotonic() + 60
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    return [p for p in pids if alive(p)]


def run_case(case: str, args: argparse.Namespace, work: Path, logs: Path) -> list[int]:
    """Run ``train`` for one case in ``work``, then ``down``; return Prefect pids left alive."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}  # embedded defaults
    env.update(PREFECT_HOME=str(work / "prefect-home"), TMPDIR=str(work / "tmp"))
    if args.fresh_encoder_cache:
        env["CLUSTERFLOW_ENCODER_CACHE"] = str(work / "encoders")
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    cli = [args.python, "-m", "clusterflow_cli.main"]

    def run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(cmd, cwd=args.checkout, env=env, capture_output=True, text=True)
        (logs / f"{case}.{what}.log").write_text(
            f"$ {' '.join(cmd)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        return proc

    workspace, out = work / "ws", work / "out"
    train = [*cli, "train", *CASES[case], "--seed", str(args.seed)]
    try:
        started = time.monotonic()
        proc = run([*train, "--workspace", str(workspace), "--out", str(out)], "train")
        print(f"{case}: train exit {proc.returncode} in {time.monotonic() - started:.0f} s")
    finally:
        left = stop_prefect(cli, workspace, run)
    if proc.returncode != 0:
        sys.exit(f"{case}: train failed, see {logs / f'{case}.train.log'}\n{proc.stderr[-2000:]}")
    return left


def checkout_meta(args: argparse.Namespace) -> dict[str, Any]:
    """What was run: the checkout's commit (and whether it had changes), interpreter, cases."""
    git = ["git", "-C", str(args.checkout)]
    head, changes = (
        subprocess.run([*git, *cmd], capture_output=True, text=True).stdout.strip()
        for cmd in (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"])
    )
    return {
        "commit": head,
        "uncommitted_changes": bool(changes),
        "python": args.python,
        "seed": args.seed,
        "cases": {name: ["train", *CASES[name]] for name in args.cases},
    }


def produce(args: argparse.Namespace) -> None:
    """Run every case, write ``digests.json`` and the normalised texts under ``--out``."""
    out = args.out.resolve()
    shutil.rmtree(out / "normalised", ignore_errors=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="cf-outputs-")).resolve()
    files: dict[str, Any] = {}
    left: list[int] = []
    try:
        for case in args.cases:
            left += run_case(case, args, root / case, out / "logs")
            files.update(digest_case(case, root / case, args.checkout, out / "normalised"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = {"meta": checkout_meta(args), "files": dict(sorted(files.items()))}
    target = out / "digests.json"
    target.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(files)} files digested: {target}")
    if left:
        sys.exit(f"Prefect server processes still running after 'clusterflow down': {left}")


def compare(first: Path, second: Path) -> int:
    """Print the files whose digests differ between two digest files; return the exit status."""
    a, b = (json.loads(p.read_text()) for p in (first, second))
    names = sorted(set(a["files"]) | set(b["files"]))
    differing = [n for n in names if a["files"].get(n, {}) != b["files"].get(n, {})]
    for name in differing:
        left, right = a["files"].get(name), b["files"].get(name)
        if left is None or right is None:
            print(f"only in {first if right is None else second}: {name}")
            continue
        loose = left.get("sha256_ignoring_modules")
        only_modules = loose is not None and loose == right.get("sha256_ignoring_modules")
        print(f"differs{' (only class module paths)' if only_modules else ''}: {name}")
        where = [p.parent / "normalised" / name for p in (first, second)]
        if all(p.exists() for p in where):
            print(f"    diff {shlex.quote(str(where[0]))} {shlex.quote(str(where[1]))}")
    print(f"{len(differing)} of {len(names)} files differ")
    return 1 if differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", type=Path, help="folder for digests.json, normalised/, logs/")
    action.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"))
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter running the CLI")
    parser.add_argument("--checkout", type=Path, default=Path.cwd(), help="default: cwd")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    fresh = "convert the OpenVINO encoder into the temporary folder, not reusing the cache"
    parser.add_argument("--fresh-encoder-cache", action="store_true", help=fresh)
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    args.checkout = args.checkout.resolve()
    if not (args.checkout / "clusterflow_cli").is_dir():
        sys.exit(f"{args.checkout} is not a clusterflow checkout: run from one or give --checkout")
    produce(args)


if __name__ == "__main__":
    main()
