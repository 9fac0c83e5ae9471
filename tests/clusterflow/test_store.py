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
