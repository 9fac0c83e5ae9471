"""Embedding throughput: clusterflow's embedder against bare SentenceTransformer.encode.

Prints ratios measured in one run (the machine is noisy; compare ratios, not seconds):
- pipeline / bare on the same distinct texts (the overhead of hashing, cache and chunking);
- pipeline / bare on the raw column with its duplicates (what deduplication saves);
- a rerun on unchanged data (must encode nothing);
- bf16 autocast and torch dynamic int8 quantisation against fp32: speed and cosine similarity.

With ``--backends``: the encoder matrix that chose the default backend (issue 17). Every backend
(torch fp32, torch bf16 autocast, OpenVINO fp32 / bf16, and batch / thread variants) encodes the
same distinct texts of two real columns in interleaved 250-text chunks, so noise from the shared
machine hits them alike; then the same again with one core taken by a busy-loop process. Agreement
with torch fp32: the minimum cosine, and the adjusted Rand index between KMeans (n_init=50) on
fp32 vectors and on the backend's vectors (beside fp32 against itself with another seed).

    python benchmarks/embed.py --rows 4000
    nice -n 5 python benchmarks/embed.py --backends --rows 2000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
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
    parser.add_argument("--backends", action="store_true", help="the backend matrix (issue 17)")
    parser.add_argument("--chunk", type=int, default=250)
    args = parser.parse_args()
    if args.backends:
        backend_matrix(args)
        return
    throughput(args)


def bare_encode(texts: list[str], model):
    """Encode ``texts`` with a bare SentenceTransformer, as a user of the library would."""
    return model.encode(
        texts,
        batch_size=64,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def throughput(args) -> None:
    """Print clusterflow's embedder against bare encode, and bf16 / int8 against fp32.

    Parameters
    ----------
    args : argparse.Namespace
        ``data`` (a CSV path), ``column`` (its text column) and ``rows`` (how many to read).
    """
    import torch
    from sentence_transformers import SentenceTransformer

    from clusterflow.embed import resolve_model_path

    texts_all = pd.read_csv(args.data)[args.column].dropna().astype(str).tolist()[: args.rows]
    distinct = list(dict.fromkeys(texts_all))
    threads = torch.get_num_threads()
    print(f"{len(texts_all)} texts, {len(distinct)} distinct; torch threads {threads}")
    bare = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    bare_encode(distinct[:64], bare)  # warm up
    distinct_and_rerun(bare, distinct, texts_all)
    raw_column(bare, texts_all)
    precisions(bare, distinct[: min(1500, len(distinct))])


def distinct_and_rerun(bare, distinct: list[str], texts_all: list[str]) -> None:
    """Print the pipeline against bare encode on distinct texts, then a rerun on the same data."""
    from clusterflow.embed import MiniLMEmbedder

    ref, t_bare = timed(lambda: bare_encode(distinct, bare))
    with tempfile.TemporaryDirectory() as tmp:
        emb = MiniLMEmbedder(precision="fp32", cache_path=Path(tmp) / "c.sqlite")
        emb.encode(["warm up"])
        ours, t_ours = timed(lambda: emb.encode(distinct))
        cos = float(np.min(np.sum(ours * ref, axis=1)))
        print(
            f"distinct texts  bare {len(distinct) / t_bare:7.1f}/s   clusterflow "
            f"{len(distinct) / t_ours:7.1f}/s   ratio {t_bare / t_ours:.3f} (goal >= 0.95)  "
            f"min cosine {cos:.6f}"
        )
        _, t_rerun = timed(lambda: emb.encode(texts_all))
        print(
            f"rerun on unchanged data: encoded {emb.last_stats['encoded']} texts "
            f"(cached {emb.last_stats['cached']}) in {t_rerun:.2f}s = "
            f"{t_rerun / t_ours:.3f} of the cold time"
        )


def raw_column(bare, texts_all: list[str]) -> None:
    """Print bare encode against the pipeline on the raw column, duplicates included."""
    from clusterflow.embed import MiniLMEmbedder

    _, t_bare_raw = timed(lambda: bare_encode(texts_all, bare))
    with tempfile.TemporaryDirectory() as tmp:
        emb = MiniLMEmbedder(precision="fp32", cache_path=Path(tmp) / "c.sqlite")
        emb.encode(["warm up"])
        _, t_raw = timed(lambda: emb.encode(texts_all))
    print(
        f"raw column with duplicates: bare {t_bare_raw:.1f}s, clusterflow {t_raw:.1f}s, "
        f"speed-up {t_bare_raw / t_raw:.2f}x"
    )


def precisions(bare, sample: list[str]) -> None:
    """Print bf16 autocast and dynamic int8 against fp32: speed and cosine similarity."""
    import torch
    from sentence_transformers import SentenceTransformer

    from clusterflow.embed import cpu_supports_bf16, resolve_model_path

    base, t_fp32 = timed(lambda: bare_encode(sample, bare))
    if cpu_supports_bf16():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            bf, t_bf = timed(lambda: bare_encode(sample, bare))
        print(
            f"bf16 autocast: {t_fp32 / t_bf:.2f}x fp32 speed, min cosine "
            f"{float(np.min(np.sum(bf * base, axis=1))):.6f}"
        )
    else:
        print("bf16 autocast: this CPU has no native bf16 (skipped; clusterflow uses fp32 here)")
    quant = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    quant = torch.ao.quantization.quantize_dynamic(quant, {torch.nn.Linear}, dtype=torch.qint8)
    q, t_q = timed(lambda: bare_encode(sample, quant))
    cos_q = np.sum(q * base, axis=1)
    print(
        f"dynamic int8: {t_fp32 / t_q:.2f}x fp32 speed, cosine min {cos_q.min():.4f} "
        f"mean {cos_q.mean():.4f} (offered only if >= 0.99 and faster)"
    )


BACKENDS = {
    # name: MiniLMEmbedder settings
    "torch fp32": {"backend": "torch", "precision": "fp32"},
    "torch bf16": {"backend": "torch", "precision": "bf16"},
    "openvino fp32": {"backend": "openvino", "precision": "fp32"},
    "openvino bf16": {"backend": "openvino", "precision": "bf16"},
    "openvino bf16 batch 16": {"backend": "openvino", "precision": "bf16", "batch_size": 16},
    "openvino bf16 batch 256": {"backend": "openvino", "precision": "bf16", "batch_size": 256},
    "openvino bf16 1 thread": {"backend": "openvino", "precision": "bf16", "threads": 1},
}
SETS = {
    "birds remarks": ("birds.csv", "remarks"),
    "stackoverflow titles": ("stackoverflow_titles.csv", "title"),
}


def _busy_loop() -> None:
    while True:
        pass


def backend_matrix(args) -> None:
    """Print every backend's texts/s, idle and with one core busy, and its agreement with fp32."""
    import torch

    sets = {
        label: distinct_sample(name, column, args.rows) for label, (name, column) in SETS.items()
    }
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"{os.cpu_count()} cores, shared with other work (compare within a column)"
    )
    embedders = warm_embedders()
    rates: dict[tuple[str, str, str], float] = {}
    agreement: dict[tuple[str, str], tuple[float, float]] = {}
    for condition in ("idle", "one core busy"):
        busy = None
        if condition != "idle":
            busy = mp.get_context("spawn").Process(target=_busy_loop, daemon=True)
            busy.start()
        try:
            for label, texts in sets.items():
                seconds, vectors = encode_interleaved(embedders, texts, args.chunk)
                for name in embedders:
                    rates[(condition, label, name)] = len(texts) / seconds[name]
                if condition == "idle":
                    agreement.update(agreement_with_fp32(label, vectors))
        finally:
            if busy is not None:
                busy.terminate()
                busy.join()
    print_matrix(list(embedders), list(sets), rates, agreement)


def distinct_sample(name: str, column: str, rows: int) -> list[str]:
    """Return ``rows`` distinct texts of a shared data set's column, in a seeded random order."""
    frame = pd.read_csv(ROOT.parent / "shared" / "data" / name)
    text_column = column if column in frame else frame.columns[1]
    texts = list(dict.fromkeys(frame[text_column].dropna().astype(str).tolist()))
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.permutation(len(texts))[:rows]]


def warm_embedders() -> dict:
    """One uncached MiniLMEmbedder per backend of BACKENDS, each encoder and tokenizer warmed."""
    from clusterflow.embed import MiniLMEmbedder

    embedders = {}
    for name, settings in BACKENDS.items():
        emb = MiniLMEmbedder(cache_path=None, chunk_size=10**9, **settings)
        emb.encode(["warm up the encoder", "and its tokenizer"])
        embedders[name] = emb
    return embedders


def encode_interleaved(
    embedders: dict, texts: list[str], chunk_size: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Encode ``texts`` chunk by chunk with every backend in turn (so noise hits them alike).

    Returns
    -------
    seconds : dict
        Each backend's summed encoding seconds.
    vectors : dict
        Each backend's vectors of all ``texts``.
    """
    seconds = dict.fromkeys(embedders, 0.0)
    vectors: dict[str, list] = {name: [] for name in embedders}
    for start in range(0, len(texts), chunk_size):
        chunk = texts[start : start + chunk_size]
        for name, emb in embedders.items():
            vecs, t = timed(lambda e=emb, c=chunk: e.encode(c))
            seconds[name] += t
            vectors[name].append(vecs)
    return seconds, {k: np.concatenate(v) for k, v in vectors.items()}


def agreement_with_fp32(label: str, vectors: dict) -> dict[tuple[str, str], tuple[float, float]]:
    """Min cosine and KMeans ARI (k=20, n_init=50) of each backend's vectors against torch fp32.

    Also fp32 against itself with another KMeans seed: the ARI floor of KMeans alone.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    ref = vectors["torch fp32"]
    k = 20
    base = KMeans(n_clusters=k, n_init=50, random_state=0).fit_predict(ref)
    floor = KMeans(n_clusters=k, n_init=50, random_state=1).fit_predict(ref)
    agreement = {(label, "fp32 vs itself, other seed"): (1.0, adjusted_rand_score(base, floor))}
    for name, vecs in vectors.items():
        cos = float(np.min(np.sum(vecs * ref, axis=1)))
        labels = KMeans(n_clusters=k, n_init=50, random_state=0).fit_predict(vecs)
        agreement[(label, name)] = (cos, adjusted_rand_score(base, labels))
    return agreement


def print_matrix(names: list[str], labels: list[str], rates: dict, agreement: dict) -> None:
    """Print the texts/s table, the agreement table and the fastest path that agrees."""
    print("\ntexts/s (distinct texts, interleaved chunks)")
    head = " | ".join(f"{c}: {lab}" for c in ("idle", "one core busy") for lab in labels)
    print(f"| backend | {head} |")
    print("|---|" + "---|" * (2 * len(labels)))
    for name in names:
        cells = " | ".join(
            f"{rates[(c, lab, name)]:.0f}" for c in ("idle", "one core busy") for lab in labels
        )
        print(f"| {name} | {cells} |")
    print("\nagreement with torch fp32 (min cosine; ARI of KMeans k=20, n_init=50)")
    print("| backend | " + " | ".join(f"{lab} min cos | {lab} ARI" for lab in labels) + " |")
    print("|---|" + "---|---|" * len(labels))
    for name in [*names, "fp32 vs itself, other seed"]:
        cells = " | ".join(
            f"{agreement[(lab, name)][0]:.5f} | {agreement[(lab, name)][1]:.4f}" for lab in labels
        )
        print(f"| {name} | {cells} |")
    ok = [n for n in names if all(agreement[(lab, n)][0] >= 0.99 for lab in labels)]
    best = max(ok, key=lambda n: sum(rates[("idle", lab, n)] for lab in labels))
    print(f"\nfastest idle path with min cosine >= 0.99 on both sets: {best}")


if __name__ == "__main__":
    main()
