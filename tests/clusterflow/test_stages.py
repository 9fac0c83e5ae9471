"""The stages package and the deprecated ``clusterflow.pipeline`` that re-exports it."""

import importlib
import pickle
import sys

import pytest

from clusterflow import stages


def _import_old_module():
    sys.modules.pop("clusterflow.pipeline", None)
    with pytest.warns(DeprecationWarning, match="clusterflow.stages"):
        return importlib.import_module("clusterflow.pipeline")


def test_the_old_module_reexports_every_public_name():
    old = _import_old_module()
    assert sorted(old.__all__) == sorted(stages.__all__)
    for name in stages.__all__:
        assert getattr(old, name) is getattr(stages, name)


def test_a_handle_pickled_under_the_old_module_still_loads():
    snapshot = stages.Snapshot(
        source="d.csv", fingerprint="f", path="p", n_rows=3, columns=("a",), reused=True
    )
    # protocol 0 names the class as text: rewrite it as a pickle written before the move did
    payload = pickle.dumps(snapshot, protocol=0)
    old = payload.replace(b"clusterflow.stages.handles", b"clusterflow.pipeline")
    assert old != payload
    sys.modules.pop("clusterflow.pipeline", None)
    with pytest.warns(DeprecationWarning, match="clusterflow.stages"):
        assert pickle.loads(old) == snapshot
