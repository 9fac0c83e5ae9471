"""Make the deployments of ``prefect.yaml`` run where the user works, for the model they use.

``prefect.yaml`` keeps its paths relative (``data/birds_demo.csv``, ``.clusterflow``) so that it
reads well and travels. Deployed as they are, those paths would be resolved in whatever folder the
worker happens to run in, the installed checkout for ``clusterflow up``: a Quick run from the UI
would read and write inside the install folder. At deploy time (``up``) and serve time (``serve``)
the parameters are therefore resolved against the user's working directory:

- inputs (``data``): ``<workdir>/<path>`` when it exists there, else the file shipped with
  clusterflow (the bundled demo data), else ``<workdir>/<path>`` (the run then says it is missing);
- outputs (``workspace``, ``out``, ``out_dir``): always under ``<workdir>``;
- templates (``{{ event.payload.data }}``) and absolute paths stay as they are.

``model_name`` points the training, monitoring and scoring parameters and the drift trigger at one
registered model, so that the automation listens for the model the user trains and monitors.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""``clusterflow_orchestration/``: its ``flows/`` mirror the checkout's, so the entrypoints of
prefect.yaml (``flows/training.py:training_flow``) exist here, installed or not."""
ROOT = PACKAGE_ROOT.parent
"""The checkout (or site-packages) holding the package: the bundled demo data is ``data/`` there."""
PREFECT_YAML = (Path(__file__).parent / "prefect.yaml").resolve()
"""``deployments/prefect.yaml`` of the checkout (the package's copy links to it); installed, the
copy itself."""
INPUT_KEYS = ("data",)
OUTPUT_KEYS = ("workspace", "out", "out_dir")
DRIFT_RESOURCE_PREFIX = "clusterflow.model."
"""Monitoring emits its drift event for resource ``clusterflow.model.<model uri>``."""


def champion_uri(model_name: str) -> str:
    """Return the URI monitoring and scoring load for ``model_name``."""
    return f"models:/{model_name}@champion"


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def resolve_path(value: Any, workdir: Path, *, is_input: bool, root: Path = ROOT) -> Any:
    """Return ``value`` as an absolute path string (see the module docstring for the rules)."""
    if not isinstance(value, str) or not value or _is_template(value) or Path(value).is_absolute():
        return value
    here = (workdir / value).resolve()
    if is_input and not here.exists() and (root / value).exists():
        return str((root / value).resolve())
    return str(here)


def resolve_config(
    config: Mapping[str, Any],
    workdir: str | Path,
    *,
    model_name: str | None = None,
    root: Path = ROOT,
) -> dict[str, Any]:
    """Return a copy of one flow's ``config`` parameter with absolute paths (and the model)."""
    workdir = Path(workdir).resolve()
    out = copy.deepcopy(dict(config))
    for key in INPUT_KEYS + OUTPUT_KEYS:
        if key in out:
            out[key] = resolve_path(out[key], workdir, is_input=key in INPUT_KEYS, root=root)
    if model_name:
        if isinstance(out.get("registry"), Mapping):  # training
            out["registry"] = {**out["registry"], "model_name": model_name}
        if "model_uri" in out:  # monitoring, scoring
            out["model_uri"] = champion_uri(model_name)
    return out


def _with_resolved_parameters(
    entry: Mapping[str, Any], workdir: str | Path, *, model_name: str | None
) -> dict[str, Any]:
    """Return a deep copy of a deployment or trigger whose ``parameters.config`` is resolved.

    Deployments and their drift triggers carry the flow's parameters the same way; only the
    ``config`` parameter holds paths and the model (:func:`resolve_config`).
    """
    out = copy.deepcopy(dict(entry))
    params = dict(out.get("parameters") or {})
    if isinstance(params.get("config"), Mapping):
        params["config"] = resolve_config(params["config"], workdir, model_name=model_name)
    out["parameters"] = params
    return out


def resolve_trigger(
    trigger: Mapping[str, Any], workdir: str | Path, *, model_name: str | None = None
) -> dict[str, Any]:
    """Return a copy of a drift trigger with resolved parameters, listening for ``model_name``."""
    out = _with_resolved_parameters(trigger, workdir, model_name=model_name)
    if model_name:
        match = dict(out.get("match") or {})
        match["prefect.resource.id"] = f"{DRIFT_RESOURCE_PREFIX}models:/{model_name}@*"
        out["match"] = match
        out["name"] = f"{model_name} retrain on drift"
        out["description"] = f"Retrain {model_name} on the batch that drifted."
    return out


def resolve_deployment(
    deployment: Mapping[str, Any], workdir: str | Path, *, model_name: str | None = None
) -> dict[str, Any]:
    """Return a copy of one ``deployments:`` entry of prefect.yaml, resolved for ``workdir``."""
    out = _with_resolved_parameters(deployment, workdir, model_name=model_name)
    out["triggers"] = [
        resolve_trigger(t, workdir, model_name=model_name) for t in out.get("triggers") or []
    ]
    return out


def resolve_document(
    document: Mapping[str, Any],
    workdir: str | Path,
    *,
    model_name: str | None = None,
    root: Path = PACKAGE_ROOT,
) -> dict[str, Any]:
    """Return prefect.yaml's content ready to deploy from anywhere for a worker in ``workdir``.

    Besides the parameters and triggers of every deployment, the entrypoints become absolute
    (the code stays where clusterflow is installed: relative entrypoints resolve against
    ``root``, the installed package by default) and one pull step makes ``workdir`` the
    working directory of every flow run, so relative paths a user types in the UI's custom-run
    form and the default ``clusterflow-runs/<run id>`` output folder land there too.
    """
    workdir = Path(workdir).resolve()
    out = copy.deepcopy(dict(document))
    deployments = []
    for entry in out.get("deployments") or []:
        d = resolve_deployment(entry, workdir, model_name=model_name)
        path, sep, function = str(d["entrypoint"]).partition(":")
        if sep and not Path(path).is_absolute():
            d["entrypoint"] = f"{(root / path).resolve()}:{function}"
        deployments.append(d)
    out["deployments"] = deployments
    out["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(workdir)}}]
    return out
