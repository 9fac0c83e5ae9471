"""Embedding throughput: clusterflow's embedder against bare SentenceTransformer.encode.

Prints ratios measured in one run (the machine is noisy; compare ratios, not seconds):
- pipeline / bare on the same distinct texts (the overhead of hashing, cache and chunking);
- pipeline / bare on the raw column with its duplicates (what deduplication saves);
- a rerun on unchanged data (must encode nothing);
- bf16 autocast and torch dynamic int8 quantisation against fp32: speed and cosine similarity.

    python benchmarks/embed.py --rows 4000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "birds.csv"))
    parser.add_argument("--column", default="remarks")
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from clusterflow.embed import MiniLMEmbedder, cpu_supports_bf16, resolve_model_path

    texts_all = pd.read_csv(args.data)[args.column].dropna().astype(str).tolist()[: args.rows]
    distinct = list(dict.fromkeys(texts_all))
    threads = torch.get_num_threads()
    print(f"{len(texts_all)} texts, {len(distinct)} distinct; torch threads {threads}")
    bare = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")

    def bare_encode(texts, model=bare):
        return model.encode(texts, batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    bare_encode(distinct[:64])  # warm up
    ref, t_bare = timed(lambda: bare_encode(distinct))
    with tempfile.TemporaryDirectory() as tmp:
        emb = MiniLMEmbedder(precision="fp32", cache_path=Path(tmp) / "c.sqlite")
        emb.encode(["warm up"])
        ours, t_ours = timed(lambda: emb.encode(distinct))
        cos = float(np.min(np.sum(ours * ref, axis=1)))
        print(f"distinct texts  bare {len(distinct) / t_bare:7.1f}/s   clusterflow "
              f"{len(distinct) / t_ours:7.1f}/s   ratio {t_bare / t_ours:.3f} (goal >= 0.95)  "
              f"min cosine {cos:.6f}")
        _, t_rerun = timed(lambda: emb.encode(texts_all))
        print(f"rerun on unchanged data: encoded {emb.last_stats['encoded']} texts "
              f"(cached {emb.last_stats['cached']}) in {t_rerun:.2f}s = "
              f"{t_rerun / t_ours:.3f} of the cold time")

    _, t_bare_raw = timed(lambda: bare_encode(texts_all))
    with tempfile.TemporaryDirectory() as tmp:
        emb = MiniLMEmbedder(precision="fp32", cache_path=Path(tmp) / "c.sqlite")
        emb.encode(["warm up"])
        _, t_raw = timed(lambda: emb.encode(texts_all))
    print(f"raw column with duplicates: bare {t_bare_raw:.1f}s, clusterflow {t_raw:.1f}s, "
          f"speed-up {t_bare_raw / t_raw:.2f}x")

    sample = distinct[: min(1500, len(distinct))]
    base, t_fp32 = timed(lambda: bare_encode(sample))
    if cpu_supports_bf16():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            bf, t_bf = timed(lambda: bare_encode(sample))
        print(f"bf16 autocast: {t_fp32 / t_bf:.2f}x fp32 speed, min cosine "
              f"{float(np.min(np.sum(bf * base, axis=1))):.6f}")
    else:
        print("bf16 autocast: this CPU has no native bf16 (skipped; clusterflow uses fp32 here)")
    quant = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    quant = torch.ao.quantization.quantize_dynamic(quant, {torch.nn.Linear}, dtype=torch.qint8)
    q, t_q = timed(lambda: bare_encode(sample, quant))
    cos_q = np.sum(q * base, axis=1)
    print(f"dynamic int8: {t_fp32 / t_q:.2f}x fp32 speed, cosine min {cos_q.min():.4f} "
          f"mean {cos_q.mean():.4f} (offered only if >= 0.99 and faster)")


if __name__ == "__main__":
    main()
