"""Speed of the sweep against the plain scikit-learn loop, from one run.

Baseline: for k = 2..20, ``KMeans(n_clusters=k)`` then the *full* ``silhouette_score``; k is the
silhouette maximum. Contender: ``ClusterSweep(algorithms=("kmeans",), k_min=2, k_max=20)``
(sampled silhouette, MiniBatchKMeans above 20,000 rows, float32, cheap metrics), plus, for
information, the default sweep over all four algorithms. Both see the same float32 matrix:
Gaussian blobs (the true k is printed), or with ``--stackoverflow`` the 20,000 real
stackoverflow titles embedded by MiniLM (cached under ~/.cache/clusterflow-bench/; 20 labels).

The whole baseline loop is run (no extrapolation) at a size that finishes on a small machine:

    nice -n 5 python benchmarks/sweep.py --rows 20000 --skip-four
    nice -n 5 python benchmarks/sweep.py --stackoverflow --skip-four
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from clusterflow.sweep import ClusterSweep


def baseline(
    X: np.ndarray, ks: range | list[int], seed: int
) -> tuple[int, float, dict[int, float]]:
    t0 = time.perf_counter()
    scores = {}
    for k in ks:
        labels = KMeans(n_clusters=k, random_state=seed).fit_predict(X)
        scores[k] = float(silhouette_score(X, labels))
        print(
            f"  baseline k={k:2d} silhouette={scores[k]:.4f} t={time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    return max(scores, key=scores.get), time.perf_counter() - t0, scores


def stackoverflow_vectors() -> np.ndarray:
    from pathlib import Path

    cache = Path.home() / ".cache" / "clusterflow-bench" / "stackoverflow_minilm.npy"
    if cache.exists():
        return np.load(cache)
    import pandas as pd

    from clusterflow.embed import MiniLMEmbedder

    root = Path(__file__).resolve().parents[1]
    titles = pd.read_csv(root.parent / "shared" / "data" / "stackoverflow_titles.csv")
    column = "title" if "title" in titles else titles.columns[1]
    vectors = MiniLMEmbedder().encode(titles[column].astype(str).tolist())
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--stackoverflow", action="store_true", help="real MiniLM vectors of the 20k titles"
    )
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--centers", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-four", action="store_true", help="skip the four-algorithm sweep")
    parser.add_argument(
        "--baseline-ks",
        default="",
        help="comma list: time the baseline on these k only and EXTRAPOLATE to k=2..20 "
        "(for machines where 19 full silhouettes on 50,000 rows take hours)",
    )
    return parser.parse_args()


def data_matrix(args: argparse.Namespace) -> np.ndarray:
    """The float32 matrix both sides see: the stackoverflow vectors or Gaussian blobs.

    With ``--stackoverflow`` sets ``args.centers`` to the 20 labels (the true k printed).
    """
    if args.stackoverflow:
        X = stackoverflow_vectors()
        args.centers = 20
    else:
        X, _ = make_blobs(
            n_samples=args.rows,
            n_features=args.dims,
            centers=args.centers,
            cluster_std=3.0,
            random_state=args.seed,
        )
    return X.astype(np.float32)


def four_algorithms(X: np.ndarray, seed: int) -> tuple[ClusterSweep, float]:
    """Fit and time the default sweep over all four algorithms; print its seconds per algorithm."""
    t0 = time.perf_counter()
    full = ClusterSweep(k_min=2, k_max=20, metric="euclidean", random_state=seed).fit(X)
    t_full = time.perf_counter() - t0
    print(f"sweep (all four) {full.algorithm_} k={full.k_} in {t_full:.1f}s", flush=True)
    print(full.results_.groupby("algorithm")["seconds"].sum().round(1).to_string(), flush=True)
    return full, t_full


def estimated_baseline(X: np.ndarray, ks: list[int], seed: int, t_sweep: float) -> None:
    """Time the baseline on ``ks`` only and print its extrapolation to k=2..20."""
    k_base, t_part, _ = baseline(X, ks, seed)
    t_base = t_part / len(ks) * 19
    print(
        f"baseline on k={ks} only: {t_part:.1f}s; ESTIMATED for k=2..20: {t_base:.0f}s; "
        f"best of the measured k: {k_base}",
        flush=True,
    )
    print(f"RATIO (estimated) kmeans sweep: {t_base / t_sweep:.1f}x faster")


def main() -> None:
    args = parse_args()
    X = data_matrix(args)
    print(
        f"data {X.shape} float32, true k={args.centers}; {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )

    t0 = time.perf_counter()
    sweep = ClusterSweep(
        algorithms=("kmeans",), k_min=2, k_max=20, metric="euclidean", random_state=args.seed
    ).fit(X)
    t_sweep = time.perf_counter() - t0
    print(f"sweep (kmeans) k={sweep.k_} in {t_sweep:.1f}s: {sweep.rule_}", flush=True)

    full = None
    if not args.skip_four:
        full, t_full = four_algorithms(X, args.seed)

    if args.skip_baseline:
        return
    if args.baseline_ks:
        estimated_baseline(X, [int(k) for k in args.baseline_ks.split(",")], args.seed, t_sweep)
        return
    k_base, t_base, _ = baseline(X, range(2, 21), args.seed)
    print(f"baseline KMeans + full silhouette: k={k_base} in {t_base:.1f}s", flush=True)
    print(f"RATIO kmeans sweep: {t_base / t_sweep:.1f}x faster, same k: {k_base == sweep.k_}")
    if full is not None:
        print(
            f"RATIO four-algorithm sweep: {t_base / t_full:.1f}x faster, same k: "
            f"{k_base == full.k_}"
        )


if __name__ == "__main__":
    main()
