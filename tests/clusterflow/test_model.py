"""ClusterModel: served input typing, cluster-id maps, and staging a renumbered copy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clusterflow.model import ClusterModel, stage_with_cluster_map
from clusterflow.schema import ColumnRoles
from tests.clusterflow.test_gate import _Centres, _Identity

ROLES = ColumnRoles(
    id_column="id", text_column="note", numeric=("n",), categorical=("c",), excluded={}
)


def _model(cluster_map=None) -> ClusterModel:
    return ClusterModel(
        roles=ROLES,
        imputer=None,
        features=_Identity(),
        clusterer=_Centres([[0.0], [10.0]]),
        embedder=None,
        cluster_map=cluster_map,
    )


def test_typed_input_declares_integers_with_gaps_as_double():
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "c": ["a", None, 2],
            "note": ["x", None, "z"],
            "extra": [0, 0, 0],
        }
    )
    typed = _model().typed_input(frame)
    assert list(typed.columns) == ["n", "c", "note"]  # features then text; id and extras dropped
    assert typed["n"].dtype == np.float64 and np.isnan(typed["n"].iloc[1])
    assert typed["c"].tolist() == ["a", None, "2"]
    assert typed["note"].tolist() == ["x", None, "z"]
    assert frame["n"].dtype == "Int64"  # the argument is not mutated


def test_relabel_and_published_ids():
    model = _model({0: 4, 1: 2})
    np.testing.assert_array_equal(model.relabel(np.array([0, 1, -1, 0])), [4, 2, -1, 4])
    assert model.published_ids() == {2, 4}
    assert _model().published_ids() == {0, 1}


def test_stage_with_cluster_map_renumbers_a_copy(tmp_path):
    source = tmp_path / "src"
    model = ClusterModel(
        roles=ColumnRoles(id_column=None, text_column=None, numeric=("n",), categorical=()),
        imputer=None,
        features=None,
        clusterer=None,
        embedder=None,
    )
    model.save(source)
    pd.DataFrame({"n": [1.0, 2.0, 3.0], "__cluster": [0, 1, -1]}).to_parquet(
        source / "reference.parquet", index=False
    )
    staged = stage_with_cluster_map(source, tmp_path / "dst", {0: 7, 1: 0})
    assert json.loads((staged / "spec.json").read_text())["cluster_map"] == {"0": 7, "1": 0}
    assert pd.read_parquet(staged / "reference.parquet")["__cluster"].tolist() == [7, 0, -1]
    # the stage store's folder is left as it was
    assert json.loads((source / "spec.json").read_text())["cluster_map"] == {}
    assert pd.read_parquet(source / "reference.parquet")["__cluster"].tolist() == [0, 1, -1]
    assert ClusterModel.load(staged).cluster_map == {0: 7, 1: 0}


SKOPS_TRUST = """
import hashlib, json, sys
if sys.argv[1] == "refused":
    from clusterflow.model import _skops_io
    _skops_io()
else:
    import skops.io
import skops.io._trusted_types as trusted
lists = {k: sorted(v) for k, v in sorted(vars(trusted).items()) if k.endswith("_TYPE_NAMES")}
loaded = sorted(m for m in ("torch", "dask") if m in sys.modules)
print(json.dumps({"lists": lists, "loaded": loaded}))
"""


@pytest.mark.slow
def test_refusing_torch_and_dask_leaves_skops_trusted_lists_unchanged():
    import subprocess
    import sys

    def run(mode: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", SKOPS_TRUST, mode], capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    refused, plain = run("refused"), run("plain")
    assert refused["loaded"] == [] and plain["loaded"] == ["dask", "torch"]
    assert refused["lists"]["SKLEARN_ESTIMATOR_TYPE_NAMES"]  # the walk found estimators at all
    assert refused["lists"] == plain["lists"]


def test_a_component_read_from_a_written_file_is_copied_not_written_again(tmp_path):
    from clusterflow.impute import TableImputer
    from clusterflow.model import dump_component, load_component

    frame = pd.DataFrame({"n": [1.0, None, 3.0, 4.0], "c": ["a", "b", None, "a"]})
    (tmp_path / "stage").mkdir()
    dump_component(TableImputer(method="knn").fit(frame), tmp_path / "stage" / "imputer")
    model = ClusterModel(
        roles=ROLES,
        imputer=load_component(tmp_path / "stage" / "imputer", "skops"),
        features=None,
        clusterer=None,
        embedder=None,
    )
    model.save(tmp_path / "model", written={"imputer": tmp_path / "stage" / "imputer"})
    saved = (tmp_path / "model" / "imputer.skops").read_bytes()
    assert saved == (tmp_path / "stage" / "imputer.skops").read_bytes()
    loaded = ClusterModel.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.imputer.transform(frame), model.imputer.transform(frame))
    # Without it, the imputer is written (and read back) as before.
    model.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "spec.json").read_text())["formats"]["imputer"] == (
        "skops"
    )
    again = ClusterModel.load(tmp_path / "again").imputer.transform(frame)
    pd.testing.assert_frame_equal(again, model.imputer.transform(frame))
