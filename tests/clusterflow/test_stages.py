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


def test_missing_shares_read_a_file_or_a_folder_of_partitions(tmp_path):
    import numpy as np
    import pandas as pd

    from clusterflow.config import TrainConfig
    from clusterflow.schema import ColumnRoles

    roles = ColumnRoles(id_column=None, text_column=None, numeric=("x",), categorical=("c",))
    parts = tmp_path / "valid"
    parts.mkdir()
    pd.DataFrame({"x": [1.0, np.nan, np.inf], "c": ["a", None, "b"]}).to_parquet(
        parts / "0.parquet"
    )
    pd.DataFrame({"x": [2.0], "c": [None]}).to_parquet(parts / "1.parquet")
    validated = stages.Validated(
        key="k",
        valid_path=str(parts),
        quarantine_path=str(tmp_path / "q.parquet"),
        roles=roles.to_dict(),
        n_valid=4,
        n_quarantined=0,
    )
    config = TrainConfig(data=str(tmp_path / "d.csv"))
    # An infinite number is a gap to the model (ClusterModel.prepare), so it counts as blank.
    assert stages.missing_shares(validated, config) == {"x": 0.5, "c": 0.5}
    drop = config.model_copy(update={"impute": config.impute.model_copy(update={"method": "drop"})})
    assert stages.missing_shares(validated, drop) is None
