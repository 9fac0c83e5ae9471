"""Digest of what ClusterSweep decides, to show a refactor changes nothing (issue 15).

Fits ``ClusterSweep`` with a fixed seed on small inputs that reach every algorithm and every
branch of the sweep (k-means and MiniBatchKMeans, the sampled hierarchy, the sampled Gaussian
mixture with its reducer, HDBSCAN with noise assigned and kept, cosine and Euclidean), and writes
for each: the candidate table without its timing column, the chosen labels, the rule, the
disagreement, the centres, and the predictions and distances of perturbed new rows. Every float
is written with ``repr`` precision, so two digests are equal only if the outputs are identical
to the last bit. Run it before and after a refactor and compare the files (or their sha256):

    nice -n 5 .venv/bin/python benchmarks/refactor_check.py --out /tmp/before.json
    nice -n 5 .venv/bin/python benchmarks/refactor_check.py --out /tmp/after.json
    cmp /tmp/before.json /tmp/after.json

Inputs: make_blobs (4 centres, 2-D), penguins' four numeric columns standardised (from
../shared/data, found from the repository root as tests/conftest.py does), sklearn's wine
standardised, and a text-like matrix (384-D blobs on the unit sphere, so the sweep picks cosine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine, make_blobs
from sklearn.preprocessing import StandardScaler

from clusterflow.sweep import ClusterSweep

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
BASE = {"stability_resamples": 2, "silhouette_sample": 300, "random_state": 0}


def blobs() -> np.ndarray:
    X, _ = make_blobs(n_samples=300, centers=4, cluster_std=0.6, random_state=0)
    return X.astype(np.float32)


def penguins() -> np.ndarray:
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    df = pd.read_csv(SHARED_DATA / "penguins.csv").dropna(subset=cols)
    return StandardScaler().fit_transform(df[cols]).astype(np.float32)


def wine() -> np.ndarray:
    return StandardScaler().fit_transform(load_wine().data).astype(np.float32)


def text_like() -> np.ndarray:
    X, _ = make_blobs(n_samples=400, n_features=384, centers=6, cluster_std=4.0, random_state=1)
    X = X + 3.0  # off the origin, then on the unit sphere like MiniLM vectors
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


# name -> (input, sweep arguments). The small thresholds push the sampled hierarchy, the sampled
# mixture and MiniBatchKMeans into play on tiny data; the one-algorithm cases make the mixture
# and the hierarchy the chosen model (their label numbering and centres are fixed at the end).
CASES: dict[str, tuple[Callable[[], np.ndarray], dict[str, Any]]] = {
    "blobs": (blobs, {"k_max": 6}),
    "blobs_hdbscan_keep": (blobs, {"k_max": 6, "noise": "keep", "max_noise": 0.5}),
    "penguins": (penguins, {}),
    "wine_sampled": (
        wine,
        {"k_max": 8, "agglomerative_sample": 120, "gmm_sample": 100, "minibatch_threshold": 150},
    ),
    "penguins_gmm": (penguins, {"algorithms": ("gmm",), "gmm_sample": 200}),
    "wine_agglomerative": (wine, {"algorithms": ("agglomerative",), "agglomerative_sample": 100}),
    "text_like": (text_like, {"k_max": 9, "reduce_dims": 8, "minibatch_threshold": 300}),
}


def _floats(values: np.ndarray) -> list[Any]:
    return [repr(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]


def digest_case(X: np.ndarray, kwargs: dict[str, Any]) -> dict[str, Any]:
    sweep = ClusterSweep(**BASE, **kwargs).fit(X)
    table = sweep.results_.drop(columns=["seconds"])
    rows = [[repr(v) for v in row] for row in table.itertuples(index=False)]
    noise = np.random.default_rng(5).normal(scale=0.05, size=X.shape).astype(np.float32)
    new = X + noise
    return {
        "columns": list(table.columns),
        "table": rows,
        "algorithm": sweep.algorithm_,
        "k": int(sweep.k_),
        "labels": [int(v) for v in sweep.labels_],
        "rule": sweep.rule_,
        "disagreement": sweep.disagreement_,
        "params": sweep.params_,
        "knee": sweep.knee_k_,
        "centers": _floats(sweep.cluster_centers_),
        "predict_new": [int(v) for v in sweep.predict(new)],
        "transform_new": hashlib.sha256(sweep.transform(new).tobytes()).hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    for name, (make, kwargs) in CASES.items():
        case = digest_case(make(), kwargs)
        text = json.dumps(case, sort_keys=True)
        report[name] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), **case}
        print(f"{name:20s} {case['algorithm']:14s} k={case['k']:<3d} {report[name]['sha256']}")
    args.out.write_text(json.dumps(report, sort_keys=True, indent=1) + "\n")
    whole = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"digest file {args.out}: sha256 {whole}")


if __name__ == "__main__":
    main()
