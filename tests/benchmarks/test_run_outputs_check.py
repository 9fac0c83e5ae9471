"""The output digest's normalisation: volatile values go, everything else still counts."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeRegressor

from benchmarks.run_outputs_check import (
    canonical_parquet,
    canonical_skops,
    compare,
    member_digest,
    normalise_csv,
    normalise_text,
)

# MLflow writes the pyfunc code under the system temp folder, with a random suffix.
TMP = tempfile.gettempdir()
LITERALS = {"/scratch/cf-outputs-abc/penguins": "@tmp@", "0123abcd" * 4: "@mlflow-run-1@"}


def test_text_loses_only_the_volatile_values():
    text = (
        '{"run_id": "20261126T225334Z-c93b0497", "seconds": 5.525, "k": 3,\n'
        ' "tracking_uri": "sqlite:////scratch/cf-outputs-abc/penguins/ws/mlflow.db",\n'
        f' "mlflow_run_id": "{"0123abcd" * 4}", "silhouette": 0.3935886758428319}}\n'
        "utc_time_created: '2026-11-26 22:58:10.805477'\nmodel_size_bytes: 29448123\n"
        f"    model_code_path: {TMP}/clusterflow-pyfunc-b_zba_tt/clusterflow_model.py\n"
    )
    assert normalise_text(text, LITERALS) == (
        '{"run_id": "@run-id@", "seconds": @seconds@, "k": 3,\n'
        ' "tracking_uri": "sqlite:///@tmp@/ws/mlflow.db",\n'
        ' "mlflow_run_id": "@mlflow-run-1@", "silhouette": 0.3935886758428319}\n'
        "utc_time_created: @time@\nmodel_size_bytes: @bytes@\n"
        f"    model_code_path: {TMP}/clusterflow-pyfunc-@random@/clusterflow_model.py\n"
    )
    # a changed metric still shows
    assert normalise_text(text.replace("0.39358", "0.39359"), LITERALS) != normalise_text(
        text, LITERALS
    )


def test_csv_loses_only_its_seconds_column():
    frame = pd.DataFrame({"k": [2, 3], "param": ["{'a': 1, 'b': 2}", ""], "seconds": [0.1, 0.2]})
    slower = frame.assign(seconds=[0.5, 0.9])
    assert normalise_csv(frame.to_csv(index=False)) == normalise_csv(slower.to_csv(index=False))
    assert "@seconds@" in normalise_csv(frame.to_csv(index=False))
    other = frame.assign(k=[2, 4])
    assert normalise_csv(other.to_csv(index=False)) != normalise_csv(frame.to_csv(index=False))
    # a file that pandas' dialect does not reproduce byte for byte is left as it is
    crlf = frame.to_csv(index=False, lineterminator="\r\n")
    assert normalise_csv(crlf) == crlf


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_padding_bytes_of_records_do_not_count():
    # like scikit-learn's tree nodes: 9 bytes of fields in 16-byte records
    spec = {"names": ["a", "b"], "formats": ["<i8", "u1"], "offsets": [0, 8], "itemsize": 16}
    dtype = np.dtype(spec)
    raw = np.zeros(2 * 16, dtype=np.uint8)
    garbage = raw.copy()
    garbage[9:16] = 7  # padding of the first record
    first, second = raw.view(dtype), garbage.view(dtype)
    assert _npy(first) != _npy(second)
    assert member_digest("x.npy", _npy(first)) == member_digest("y.npy", _npy(second))
    changed = first.copy()
    changed["b"][1] = 1
    assert member_digest("x.npy", _npy(changed)) != member_digest("x.npy", _npy(first))
    plain = np.arange(4.0)
    assert member_digest("x.npy", _npy(plain)) != member_digest("x.npy", _npy(plain + 1))


def _tree(tmp_path, name: str, depth: int = 3):
    import skops.io

    X = np.random.default_rng(0).normal(size=(60, 3))
    tree = DecisionTreeRegressor(max_depth=depth, random_state=0).fit(X, X[:, 0])
    path = tmp_path / f"{name}.skops"
    skops.io.dump(tree, path)
    return path


def test_skops_files_compare_by_content(tmp_path):
    first, second = _tree(tmp_path, "first"), _tree(tmp_path, "second")
    assert canonical_skops(first) == canonical_skops(second)
    assert "sha256:" in canonical_skops(first)
    assert canonical_skops(_tree(tmp_path, "deeper", depth=4)) != canonical_skops(first)


def test_skops_class_modules_count_unless_asked(tmp_path):
    path = _tree(tmp_path, "tree")
    moved = tmp_path / "moved.skops"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(moved, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "schema.json":
                data = data.replace(b'"sklearn.tree._classes"', b'"sklearn.tree.moved"')
            dst.writestr(name, data)
    assert canonical_skops(moved) != canonical_skops(path)
    assert canonical_skops(moved, keep_modules=False) == canonical_skops(path, keep_modules=False)


def test_parquet_compares_by_content(tmp_path):
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.3], "c": pd.Categorical(["a", "b", "a"])})
    frame.to_parquet(tmp_path / "one.parquet", row_group_size=1)
    frame.to_parquet(tmp_path / "two.parquet")
    assert canonical_parquet(tmp_path / "one.parquet") == canonical_parquet(
        tmp_path / "two.parquet"
    )
    frame.assign(x=[0.1, 0.2, 0.30000000000000004]).to_parquet(tmp_path / "three.parquet")
    assert canonical_parquet(tmp_path / "three.parquet") != canonical_parquet(
        tmp_path / "one.parquet"
    )


@pytest.mark.parametrize("same", [True, False])
def test_compare_exits_one_on_any_difference(tmp_path, capsys, same):
    files = {"penguins/out/summary.json": {"kind": "text", "sha256": "aa"}}
    other = dict(files) if same else {"penguins/out/summary.json": {"kind": "text", "sha256": "b"}}
    (tmp_path / "a.json").write_text(json.dumps({"meta": {}, "files": files}))
    (tmp_path / "b.json").write_text(json.dumps({"meta": {"commit": "x"}, "files": other}))
    assert compare(tmp_path / "a.json", tmp_path / "b.json") == (0 if same else 1)
    out = capsys.readouterr().out
    assert ("differs: penguins/out/summary.json" in out) is not same
