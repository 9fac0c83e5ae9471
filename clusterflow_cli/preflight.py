"""Checks every command runs before any flow (and Prefect) starts: one line on failure.

``train``, ``impute``, ``score`` and ``monitor`` all check the file (path, format, encoding,
delimiter, header) and the columns their options name; ``score`` and ``monitor`` also check that
the model URI resolves in the configured registry. The same checks run again inside the flows;
here the common mistakes fail in about a second instead of after a flow run has started.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from clusterflow.errors import RegistryError

FULL_READ_BYTES = 32 * 1024 * 1024
"""Files up to this size are read whole by the preflight (well under a second)."""


def check_file(
    data: str,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    exclude_columns: Sequence[str] = (),
    time_column: str | None = None,
    partitioned: bool = False,
) -> list[str]:
    """Check the file's header and the named columns; return the header.

    A file up to ``FULL_READ_BYTES`` is read whole, so the problems only its rows show (a header
    without rows, a ragged line, a broken JSON line) fail here too; a bigger one is judged by its
    header (the flow's own read checks the rest). ``partitioned`` (a ``--dask-address`` run):
    ``data`` may also be a folder or a glob of Parquet files, judged by the first file's header.
    """
    from clusterflow.io import read_header, read_table
    from clusterflow.schema import check_named_columns

    if partitioned:
        from clusterflow.partitioned import input_files

        data = str(input_files(data)[0])
    header = read_header(data)
    if Path(data).is_file() and Path(data).stat().st_size <= FULL_READ_BYTES:
        header = [str(c) for c in read_table(data).columns]
    if header:
        check_named_columns(
            header,
            text_column=text_column,
            id_column=id_column,
            exclude_columns=exclude_columns,
            time_column=time_column,
            source=Path(data).name,
        )
    return header


def check_output(out: str | Path, *, folder: bool = False) -> None:
    """Check that ``--out`` can be written, before any work: one line naming it when not.

    A file output must not be a folder (a ``folder`` output not a file), and the nearest folder
    on its path that exists must take a new file: tried with a probe file, removed at once
    (permission bits do not say it for root, nor for ``/proc``). Missing folders below it are
    created by the command.

    Raises
    ------
    ConfigError
        Naming ``--out`` and what is in the way.
    """
    import os
    import tempfile

    from clusterflow.errors import ConfigError

    target = Path(out)
    if target.exists() and target.is_dir() != folder:
        found, wanted = ("a file", "a folder") if folder else ("a folder", "a file")
        raise ConfigError(
            f"--out {out} is {found}; this command writes {wanted} there",
            hint=f"give --out the path of {wanted}",
        )
    nearest = Path(os.path.abspath(target if folder else target.parent))
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise ConfigError(
            f"--out {out}: {nearest} is a file, so nothing can be written under it",
            hint="give --out a path whose folders are folders",
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".clusterflow-probe-", dir=nearest)
    except OSError as err:
        raise ConfigError(
            f"--out {out}: cannot write in {nearest} ({err.strerror or err})",
            hint="give --out a path in a folder you can write to",
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_model_uri(uri: str, workspace: str) -> str:
    """Check that ``uri`` names a model in the configured registry; return the tracking URI.

    Only the registry's metadata is read (no model is downloaded or loaded): from a local SQLite
    store directly (:func:`clusterflow.scoring.find_registered_model`, no MLflow import), else
    through MLflow's client.

    Raises
    ------
    ConfigError
        For a URI that is not ``models:/<name>@<alias>``, ``models:/<name>/<version>`` or
        ``runs:/<run id>/<path>``.
    RegistryError
        When the registry has no such model, alias, version or run.
    """
    from clusterflow.model_uri import RunURI, parse_model_uri
    from clusterflow.scoring import find_registered_model, tracking_uri

    parsed = parse_model_uri(uri)

    if find_registered_model(uri, workspace) is not None:
        return tracking_uri(workspace)
    tracking = tracking_uri(workspace)
    store = Path(tracking.removeprefix("sqlite:///").split("?")[0])
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if (
        tracking.startswith("sqlite:///")
        and not store.is_file()
        and registry in (None, "", tracking)
    ):
        # MLflow would create an empty store there: reading a model should not write anything.
        raise RegistryError(
            f"no model {uri}: there is no registry at {store}",
            hint="train a model first (clusterflow train DATA), or check --workspace and "
            "MLFLOW_TRACKING_URI",
        )
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from clusterflow.model_registry import connect, redact

    tracking = connect(workspace)
    client = MlflowClient()
    try:
        if isinstance(parsed, RunURI):
            client.get_run(parsed.run_id)
        else:
            parsed.model_version(client)
    except MlflowException as err:
        raise RegistryError(
            f"no model {uri} in {redact(tracking)}",
            hint="train a model first (clusterflow train DATA), or check --model and "
            "MLFLOW_TRACKING_URI",
        ) from err
    return tracking


def check_dask_address(address: str | None) -> str | None:
    """Check a ``--dask-address`` before any work (a bad one is one line); return it.

    An empty address is refused too (it would otherwise run in process without a word).
    """
    if address is not None:
        from clusterflow.distributed import parse_dask_address

        parse_dask_address(address)
    return address
