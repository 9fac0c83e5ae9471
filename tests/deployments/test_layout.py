"""Issue 15: the Prefect code installs as clusterflow_orchestration only; the checkout's flows/,
tasks/ and deployments/ folders stay where a reader looks, and prefect.yaml's entrypoints work
from the checkout (``prefect deploy`` from the repository root) and from the installed package
(``clusterflow up`` and ``serve``)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import tomllib

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from setuptools import find_packages

import clusterflow_orchestration
from clusterflow_orchestration.deployments.resolve import PACKAGE_ROOT
from clusterflow_orchestration.deployments.serve import PREFECT_YAML, _import_flow, load_specs
from tests.conftest import ROOT

LAYERS = ("flows", "tasks", "deployments")
MODULES = [
    f"{layer}.{info.name}"
    for layer in LAYERS
    for info in pkgutil.iter_modules([str(PACKAGE_ROOT / layer)])
]


def _public_names(module) -> set[str]:
    """The names a module defines at its top level (not the ones it imports), minus private ones."""
    names = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_only_clusterflow_packages_are_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = find_packages(where=str(ROOT), include=config["packages"]["find"]["include"])
    assert {p.split(".")[0] for p in packages} == {
        "clusterflow",
        "clusterflow_cli",
        "clusterflow_orchestration",
    }
    assert {f"clusterflow_orchestration.{layer}" for layer in LAYERS} <= set(packages)
    assert config["package-data"] == {"clusterflow_orchestration.deployments": ["*.yaml"]}


def test_the_packaged_prefect_yaml_is_the_checkouts():
    """The package's prefect.yaml links to deployments/prefect.yaml (one file to edit)."""
    packaged = PACKAGE_ROOT / "deployments" / "prefect.yaml"
    checkout = ROOT / "deployments" / "prefect.yaml"
    assert packaged.read_bytes() == checkout.read_bytes()
    assert PREFECT_YAML == checkout.resolve()
    assert yaml.safe_load(packaged.read_text())["deployments"]


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_thin_twin_in_the_checkout(name):
    """flows/x.py, tasks/x.py, deployments/x.py re-export clusterflow_orchestration's module x."""
    real = importlib.import_module(f"clusterflow_orchestration.{name}")
    twin = importlib.import_module(name)
    assert twin.__file__ == str(ROOT / f"{name.replace('.', '/')}.py")
    names = _public_names(real)
    assert names and names <= set(twin.__all__)  # (serve's also re-exports what moved to specs)
    for attribute in twin.__all__:
        assert getattr(twin, attribute) is getattr(real, attribute), attribute


def test_no_thin_file_without_a_module():
    for layer in LAYERS:
        thin = {p.stem for p in (ROOT / layer).glob("*.py")} - {"__init__"}
        assert {m.split(".")[1] for m in MODULES if m.startswith(f"{layer}.")} == thin, layer
        assert (ROOT / layer / "__init__.py").read_text().startswith('"""')
    assert clusterflow_orchestration.__doc__


@pytest.mark.parametrize("spec", load_specs(), ids=lambda s: f"{s.kind}-{s.name}")
def test_entrypoints_load_from_the_checkout_and_from_the_package(spec):
    path, _, function = spec.entrypoint.partition(":")
    served = _import_flow(spec.entrypoint)  # what `serve` runs (a module-path entrypoint)
    assert served.fn.__module__ == "clusterflow_orchestration." + path[:-3].replace("/", ".")
    # `prefect deploy` from the repository root: the thin file re-exports the installed flow
    assert load_flow_from_entrypoint(f"{ROOT / path}:{function}") is served
    # `clusterflow up` deploys the package's file (resolve_document), installed or not
    assert load_flow_from_entrypoint(f"{PACKAGE_ROOT / path}:{function}").name == served.name
