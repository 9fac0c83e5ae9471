import numpy as np
import pytest

from clusterflow.embed import EmbeddingCache, MiniLMEmbedder, check_embeddings_shape, embed_column
from clusterflow.errors import EmbeddingError


class CountingEmbedder:
    """A deterministic stand-in that records what it was asked to encode."""

    model_id = "counting"
    dim = 4

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.0] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_embed_column_gives_zero_vectors_to_empty_texts():
    emb = CountingEmbedder()
    vectors, present = embed_column(emb, ["abc", None, float("nan"), "  ", "aa"])
    assert present.tolist() == [True, False, False, False, True]
    assert np.all(vectors[~present] == 0)
    assert emb.seen == ["abc", "aa"]


def test_shape_check_names_expected_and_received():
    with pytest.raises(EmbeddingError, match=r"shape \(3, 4\), expected \(5, 4\)"):
        check_embeddings_shape(np.zeros((3, 4)), 5, 4)


def test_cache_round_trip(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    vec = np.arange(4, dtype=np.float32)
    cache.put_many({"k": vec})
    got = cache.get_many(["k", "missing"], 4)
    assert list(got) == ["k"] and np.array_equal(got["k"], vec)
    assert cache.get_many(["k"], 5) == {}  # a vector of another width is not returned


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    return MiniLMEmbedder(cache_path=tmp_path_factory.mktemp("emb") / "cache.sqlite")


def test_minilm_offline_dedup_and_cache(minilm):
    texts = ["a bird hit the windshield", "engine ingested a goose", "a bird hit the windshield"]
    first = minilm.encode(texts)
    assert first.shape == (3, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-3)
    assert np.array_equal(first[0], first[2])
    assert minilm.last_stats == {"texts": 3, "unique": 2, "cached": 0, "encoded": 2}
    again = minilm.encode(texts)
    assert minilm.last_stats["encoded"] == 0 and minilm.last_stats["cached"] == 2
    assert np.array_equal(first, again)
    sim = first[0] @ first[1]
    assert 0.0 < sim < 0.95  # related but different sentences


def test_precision_is_part_of_the_model_id(minilm):
    assert minilm.model_id.startswith("all-MiniLM-L6-v2@")
    assert MiniLMEmbedder(precision="fp32", backend="torch").model_id == "all-MiniLM-L6-v2@fp32"
    assert MiniLMEmbedder(precision="fp32", backend="openvino").model_id == (
        "all-MiniLM-L6-v2@openvino-fp32"
    )
