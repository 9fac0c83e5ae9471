"""The OpenVINO encoder gives the sentence-transformers vectors, from a once-converted model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clusterflow.embed import MiniLMEmbedder, resolve_backend
from clusterflow.errors import EmbeddingError
from tests.conftest import bundled

pytest.importorskip("openvino")


def _texts(n: int = 60) -> list[str]:
    remarks = pd.read_csv(bundled("birds_demo.csv"))["remarks"].dropna().astype(str)
    return list(dict.fromkeys(remarks.tolist()))[:n] + ["  padded  ", "x"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_matches_torch_fp32(precision):
    texts = _texts()
    ref = MiniLMEmbedder(backend="torch", precision="fp32").encode(texts)
    emb = MiniLMEmbedder(backend="openvino", precision=precision, batch_size=16)
    got = emb.encode(texts)
    assert got.shape == ref.shape == (len(texts), emb.dim)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert float(np.min(np.sum(got * ref, axis=1))) >= 0.99
    assert emb.model_id == f"all-MiniLM-L6-v2@openvino-{precision}"


def test_auto_backend_and_unknown_backend():
    assert resolve_backend("auto") == "openvino"  # installed here, chosen by the benchmark
    assert resolve_backend("torch") == "torch"
    with pytest.raises(EmbeddingError, match="unknown embedding backend"):
        resolve_backend("onnx")


@pytest.mark.slow  # converts the model from its torch weights (~20 s on 2 shared cores)
def test_conversion_is_cached_by_model_identity(tmp_path, monkeypatch):
    import clusterflow.openvino_encoder as ov_encoder

    first = MiniLMEmbedder(backend="openvino", model_cache_dir=tmp_path)
    vectors = first.encode(["a cached conversion"])
    folders = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1 and (folders[0] / "model.xml").exists()

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the IR is cached")

    monkeypatch.setattr(ov_encoder, "convert", no_conversion)
    second = MiniLMEmbedder(backend="openvino", model_cache_dir=tmp_path)
    np.testing.assert_allclose(second.encode(["a cached conversion"]), vectors, atol=1e-6)


def test_one_encoder_shared_by_threads_gives_the_sequential_vectors():
    # A Dask worker with several threads shares one encoder per process; one infer request
    # shared by threads failed with "Infer Request is busy".
    from concurrent.futures import ThreadPoolExecutor

    texts = _texts(48)
    emb = MiniLMEmbedder(backend="openvino", precision="fp32", batch_size=4)
    sequential = emb.encode(texts)
    chunks = [texts[i : i + 6] for i in range(0, len(texts), 6)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = np.concatenate(list(pool.map(emb.encode, chunks * 3)))
    np.testing.assert_allclose(parallel, np.concatenate([sequential] * 3), atol=1e-5)
