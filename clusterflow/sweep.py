"""Sweep clustering algorithms over a range of cluster counts and choose one, with reasons.

How k is chosen (copied into the README)
----------------------------------------
Every candidate (algorithm, k) is fitted on the feature matrix and scored with the same
metrics: silhouette (cosine distance for text-dominated features, computed on a fixed random
sample so every candidate is judged on the same rows), Davies-Bouldin, Calinski-Harabasz,
within-cluster sum of squares ("inertia", whose knee is located with ``kneed``), BIC for the
Gaussian mixture, the share of HDBSCAN noise, and *stability*: the mean adjusted Rand index
between the candidate's labels and refits on random 80% subsamples (subsampling, not the
bootstrap, because repeated rows fake density).

Every candidate also gets its *evidence* (the classification likelihood of its labeling,
penalised like BIC: :func:`clusterflow.cluster.evidence.labeling_score`), its prediction
strength and the share of its smallest cluster. Which candidate wins is decided by the pure
function :func:`clusterflow.cluster.selection.select` (viability, evidence or silhouette
proposes, a silhouette guard, runner-ups, edge notes): see that module's docstring and the
README. Candidates whose k lies outside the asked range (HDBSCAN finds its own) stand only when
nothing inside it is usable.

The upper bound of k grows with the data: ``default_k_max(n) = clip(floor(sqrt(n / 2)), 10, 100)``
(the classic ``sqrt(n/2)`` rule of thumb, at least 10 and at most 100, never more than n - 1).
Every k is tried up to 20; above 20 the grid grows in steps of about 10 %.

Assignment of new points (``predict``) reproduces ``labels_`` exactly on the training rows:
k-means, agglomerative and HDBSCAN assign to the nearest cluster centre (HDBSCAN centres are the
means of its non-noise members; with ``noise="keep"`` a point farther from its centre than
every training member of that cluster is noise, -1); the Gaussian mixture uses its own
``predict``. ``labels_`` is computed by ``predict`` itself, so the registered model and the
training assignments cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_array, check_is_fitted
from threadpoolctl import threadpool_limits

from clusterflow.cluster.evidence import Reducer, prediction_strength, score_reduced
from clusterflow.cluster.selection import SelectionParams, select
from clusterflow.errors import ConfigError
from clusterflow.progress import report

__all__ = ["ClusterSweep", "default_k_max", "k_grid"]

# Models saved before the reducer moved to clusterflow.cluster.evidence refer to this name.
_Reducer = Reducer

ALGORITHMS = ("kmeans", "agglomerative", "hdbscan", "gmm")
RESULT_COLUMNS = [
    "algorithm",
    "k",
    "param",
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "inertia",
    "bic",
    "stability",
    "prediction_strength",
    "evidence",
    "evidence_share",
    "min_share",
    "noise_share",
    "seconds",
    "viable",
    "selected",
]


def default_k_max(n_rows: int) -> int:
    """Return the default upper bound of the cluster count for ``n_rows`` rows.

    The rule is ``clip(floor(sqrt(n_rows / 2)), 10, 100)``, never more than ``n_rows - 1``.

    Parameters
    ----------
    n_rows : int
        Number of rows to cluster.

    Returns
    -------
    int
        The upper bound (at least 2 when ``n_rows >= 3``).
    """
    k = int(np.clip(np.floor(np.sqrt(max(n_rows, 0) / 2.0)), 10, 100))
    return max(1, min(k, n_rows - 1))


def k_grid(k_min: int, k_max: int, dense_until: int = 20, step: float = 1.1) -> list[int]:
    """Return the cluster counts to try: every k up to ``dense_until``, then ~10 % steps.

    Parameters
    ----------
    k_min, k_max : int
        Inclusive range.
    dense_until : int, default=20
        Every integer k up to this value is tried.
    step : float, default=1.1
        Growth factor of the grid above ``dense_until``.

    Returns
    -------
    list of int
        Sorted, unique, always containing ``k_min`` and ``k_max``.
    """
    ks = list(range(k_min, min(k_max, dense_until) + 1))
    k = float(max(dense_until, k_min))
    while k < k_max:
        k = max(k * step, k + 1)
        ks.append(min(int(round(k)), k_max))
    ks.append(k_max)
    return sorted(set(ks))


def _nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest centre, computed in float64 by rows."""
    X64 = np.asarray(X, dtype=np.float64)
    C64 = np.asarray(centers, dtype=np.float64)
    c_sq = (C64**2).sum(axis=1)
    labels = np.empty(len(X64), dtype=np.int64)
    dist = np.empty(len(X64), dtype=np.float64)
    # Fixed-size chunks keep memory bounded and make the result independent of n.
    for start in range(0, len(X64), 4096):
        block = X64[start : start + 4096]
        d2 = (block**2).sum(axis=1)[:, None] - 2.0 * block @ C64.T + c_sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        idx = d2.argmin(axis=1)
        labels[start : start + 4096] = idx
        dist[start : start + 4096] = d2[np.arange(len(block)), idx]
    return labels, dist


def _centers_of(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each non-noise cluster, and the cluster ids in order."""
    ids = np.unique(labels[labels >= 0])
    centers = np.vstack([X[labels == c].mean(axis=0) for c in ids])
    return centers, ids


class _Model:
    """One fitted candidate: enough state to assign points. Picklable (no closures)."""

    def __init__(
        self,
        algorithm: str,
        centers: np.ndarray,
        *,
        radius: np.ndarray | None = None,
        gmm: GaussianMixture | None = None,
        reducer: Reducer | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.centers = centers
        self.radius = radius
        self.gmm = gmm
        self.reducer = reducer
        self.label_map: np.ndarray | None = None

    def predict(self, Xw: np.ndarray) -> np.ndarray:
        if self.gmm is not None:
            Z = self.reducer.transform(Xw) if self.reducer is not None else Xw
            comps = self.gmm.predict(Z).astype(np.int64)
            return comps if self.label_map is None else self.label_map[comps]
        labels, d2 = _nearest(Xw, self.centers)
        if self.radius is not None:
            labels = np.where(d2 > self.radius[labels], -1, labels)
        return labels


class ClusterSweep(ClusterMixin, BaseEstimator):
    """Try several clustering algorithms over a range of k and keep the best by a stated rule.

    See the module docstring for the selection rule and the default range of k.

    Parameters
    ----------
    k_min : int, default=2
        Smallest cluster count tried.
    k_max : int or None, default=None
        Largest cluster count tried; ``None`` uses :func:`default_k_max`.
    algorithms : sequence of str, default=("kmeans", "agglomerative", "hdbscan", "gmm")
        Families to try.
    metric : {"auto", "cosine", "euclidean"}, default="auto"
        ``"auto"`` picks cosine when the rows lie on a sphere (text-dominated features,
        row norms within 5 % of each other), otherwise Euclidean. With cosine, rows are
        L2-normalised first and every algorithm works on the normalised rows.
    noise : {"assign", "keep"}, default="assign"
        HDBSCAN noise: assign to the nearest cluster, or keep as -1.
    silhouette_sample : int, default=2000
        Rows of the fixed sample on which silhouette is computed.
    stability_resamples : int, default=3
        Number of 80 % subsamples refitted per candidate (0 disables stability).
    stability_sample : int, default=2000
        Size of the row set on which stability is measured.
    agglomerative_sample : int, default=5000
        Above this many rows the hierarchy is built on a sample and the rest is assigned to
        the nearest centre (Ward linkage is quadratic in memory).
    minibatch_threshold : int, default=20000
        Above this many rows k-means uses ``MiniBatchKMeans``.
    gmm_sample : int, default=10000
        Rows on which the Gaussian mixtures are fitted.
    reduce_dims : int, default=16
        HDBSCAN and the Gaussian mixture work on at most this many PCA components
        (density estimates degrade in high dimension).
    max_noise : float, default=0.10
        Largest HDBSCAN noise share of a viable candidate.
    min_stability : float, default=0.5
        Smallest stability of a viable candidate.
    min_share : float, default=SelectionParams.min_share
        Smallest share of the rows the smallest cluster of a viable candidate holds.
    silhouette_ratio : float, default=SelectionParams.silhouette_ratio
        The most-evidence candidate is kept only if its silhouette reaches this share of the
        best silhouette (see :func:`clusterflow.cluster.selection.select`).
    random_state : int, default=0
        Seed of every random step.

    Attributes
    ----------
    results_ : DataFrame
        One row per candidate with the columns listed in ``RESULT_COLUMNS``.
    algorithm_ : str
        Chosen algorithm.
    k_ : int
        Chosen number of clusters.
    labels_ : ndarray of int
        Cluster of each training row (-1 = noise, only with ``noise="keep"``).
    cluster_centers_ : ndarray of shape (k_, n_features)
        Mean of each cluster in the working space.
    knee_k_ : int or None
        Knee of the chosen algorithm's inertia curve.
    rule_ : str
        The selection rule in words, with the figures that decided.
    disagreement_ : str
        Which metrics prefer another candidate ("" when all agree).
    metric_ : str
        The metric used (``"cosine"`` or ``"euclidean"``).
    params_ : dict
        The grid and the seed.
    selection_ : Selection
        The rule's outcome: chosen candidate, coarser and finer runner-ups, notes.
    """

    def __init__(
        self,
        *,
        k_min: int = 2,
        k_max: int | None = None,
        algorithms: Sequence[str] = ALGORITHMS,
        metric: str = "auto",
        noise: str = "assign",
        silhouette_sample: int = 2000,
        stability_resamples: int = 3,
        stability_sample: int = 2000,
        agglomerative_sample: int = 5000,
        minibatch_threshold: int = 20000,
        gmm_sample: int = 10000,
        reduce_dims: int = 16,
        max_noise: float = 0.10,
        min_stability: float = 0.5,
        min_share: float = SelectionParams.min_share,
        silhouette_ratio: float = SelectionParams.silhouette_ratio,
        random_state: int = 0,
    ) -> None:
        self.k_min = k_min
        self.k_max = k_max
        self.algorithms = algorithms
        self.metric = metric
        self.noise = noise
        self.silhouette_sample = silhouette_sample
        self.stability_resamples = stability_resamples
        self.stability_sample = stability_sample
        self.agglomerative_sample = agglomerative_sample
        self.minibatch_threshold = minibatch_threshold
        self.gmm_sample = gmm_sample
        self.reduce_dims = reduce_dims
        self.max_noise = max_noise
        self.min_stability = min_stability
        self.min_share = min_share
        self.silhouette_ratio = silhouette_ratio
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _validate(self, n: int) -> tuple[int, int]:
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown or not self.algorithms:
            raise ConfigError(
                f"unknown algorithms {unknown or list(self.algorithms)}",
                hint=f"choose among {list(ALGORITHMS)}",
            )
        if self.metric not in ("auto", "cosine", "euclidean"):
            raise ConfigError(f"metric must be auto, cosine or euclidean, got {self.metric!r}")
        if self.noise not in ("assign", "keep"):
            raise ConfigError(f"noise must be 'assign' or 'keep', got {self.noise!r}")
        if self.k_min < 2:
            raise ConfigError(f"k_min must be at least 2, got {self.k_min}")
        if n < max(self.k_min, 3):
            raise ConfigError(
                f"only {n} rows to cluster, fewer than k_min={self.k_min} (or 3)",
                hint="pass more rows or lower --k-min",
            )
        k_max = default_k_max(n) if self.k_max is None else int(self.k_max)
        k_max = min(k_max, n - 1)
        if self.k_min > k_max:
            raise ConfigError(
                f"k_min={self.k_min} is larger than k_max={k_max} (n_rows={n})",
                hint="lower --k-min or raise --k-max",
            )
        return int(self.k_min), k_max

    # ------------------------------------------------------------------ fitting helpers
    def _kmeans(self, X: np.ndarray, k: int, seed: int, n_init: int = 2) -> np.ndarray:
        # k-means++ seeding dominates the cost on wide data: the subsample refits of the
        # stability check use a single start.
        if len(X) > self.minibatch_threshold:
            km = MiniBatchKMeans(
                n_clusters=k,
                n_init=n_init + 1,
                batch_size=4096,
                random_state=seed,
                max_no_improvement=10,
            )
        else:
            km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        return km.fit(X).cluster_centers_

    def _hdbscan(self, Z: np.ndarray, min_cluster_size: int) -> np.ndarray:
        import hdbscan

        # A small min_samples keeps the noise share low (the default equals min_cluster_size,
        # which labels most of a diffuse text set as noise).
        model = hdbscan.HDBSCAN(
            min_cluster_size=int(min_cluster_size), min_samples=min(int(min_cluster_size), 5)
        )
        return model.fit_predict(Z)

    def _gmm(self, Z: np.ndarray, k: int, seed: int) -> GaussianMixture:
        cov = "full" if Z.shape[1] <= 8 else "diag"
        Z = np.asarray(Z, dtype=np.float64)
        gmm = GaussianMixture(
            n_components=k, covariance_type=cov, n_init=1, random_state=seed, reg_covar=1e-4
        )
        return gmm.fit(Z)

    def _fit_candidate(
        self, algorithm: str, k: int, Xw: np.ndarray, seed: int, ctx: dict[str, Any]
    ) -> _Model:
        """Fit one candidate on ``Xw`` (the full working data or a subsample)."""
        if algorithm == "kmeans":
            return _Model("kmeans", self._kmeans(Xw, k, seed))
        if algorithm == "agglomerative":
            rows = ctx["agglo_rows"]
            tree = ctx["agglo_tree"]
            cut = fcluster(tree, t=k, criterion="maxclust") - 1
            centers, _ = _centers_of(rows, cut)
            return _Model("agglomerative", centers)
        if algorithm == "gmm":
            reducer = ctx["reducer"]
            Z = reducer.transform(Xw) if reducer is not None else Xw
            if len(Z) > self.gmm_sample:
                pick = np.random.default_rng(seed).choice(len(Z), self.gmm_sample, replace=False)
                Z = Z[np.sort(pick)]
            return _Model(
                "gmm", np.empty((0, Xw.shape[1])), gmm=self._gmm(Z, k, seed), reducer=reducer
            )
        raise AssertionError(algorithm)

    def _hdbscan_model(self, Xw: np.ndarray, Z: np.ndarray, mcs: int) -> tuple[_Model, float]:
        raw = self._hdbscan(Z, mcs)
        noise_share = float((raw < 0).mean())
        if (raw >= 0).sum() == 0:
            return _Model("hdbscan", np.empty((0, Xw.shape[1]))), noise_share
        centers, ids = _centers_of(Xw, raw)
        radius = None
        if self.noise == "keep":
            remap = {c: i for i, c in enumerate(ids)}
            members = raw >= 0
            lab = np.array([remap[c] for c in raw[members]])
            d2 = ((Xw[members] - centers[lab]) ** 2).sum(axis=1)
            radius = np.array([d2[lab == i].max() for i in range(len(ids))]) * (1 + 1e-9)
        return _Model("hdbscan", centers, radius=radius), noise_share

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: object = None) -> ClusterSweep:
        """Run the sweep and keep the chosen candidate.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Feature matrix (see :class:`clusterflow.features.FeatureBuilder`).
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        self : ClusterSweep
            The fitted sweep.

        Raises
        ------
        ConfigError
            If the k range does not fit the data.
        NoViableClustering
            If no candidate yields a usable clustering.
        """
        X = check_array(X, dtype=np.float32)
        # On small inputs BLAS threads cost more in start-up and contention than they save.
        limit = 1 if X.size < 2_000_000 else None
        with threadpool_limits(limits=limit):
            return self._fit(X)

    def _fit(self, X: np.ndarray) -> ClusterSweep:
        n = len(X)
        k_min, k_max = self._validate(n)
        self.k_max_ = k_max
        self.n_features_in_ = X.shape[1]
        rng = np.random.default_rng(self.random_state)
        self.metric_ = self._resolve_metric(X)
        Xw = self._working(X)

        ks = k_grid(k_min, k_max)
        # Fixed evaluation rows: every candidate is judged on the same sample.
        sil_idx = np.sort(rng.choice(n, min(n, self.silhouette_sample), replace=False))
        D_sil = pairwise_distances(Xw[sil_idx], metric=self.metric_).astype(np.float64)
        np.fill_diagonal(D_sil, 0.0)
        stab_idx = np.sort(rng.choice(n, min(n, self.stability_sample), replace=False))

        reducer = Reducer(Xw, max_dims=self.reduce_dims, random_state=self.random_state)
        ctx: dict[str, Any] = {"reducer": reducer, "Z": reducer.transform(Xw)}

        rows: list[dict[str, Any]] = []
        models: list[_Model] = []

        def record(
            algorithm: str, param: int, model: _Model, seconds: float, noise: float, refit: Any
        ) -> None:
            row = self._score(
                algorithm, param, model, Xw, D_sil, sil_idx, stab_idx, ctx, noise, refit
            )
            row["seconds"] += seconds
            rows.append(row)
            models.append(model)
            report("sweep", len(rows), n_candidates, "candidates")

        n_candidates = sum(
            len(self._min_cluster_sizes(n, ks)) if a == "hdbscan" else len(ks)
            for a in self.algorithms
        )

        for algorithm in self.algorithms:
            if algorithm == "hdbscan":
                Z = ctx["reducer"].transform(Xw)
                for mcs in self._min_cluster_sizes(n, ks):
                    t0 = time.perf_counter()
                    model, noise = self._hdbscan_model(Xw, Z, mcs)
                    record("hdbscan", mcs, model, time.perf_counter() - t0, noise, ("hdbscan", mcs))
                continue
            t0 = time.perf_counter()
            if algorithm == "agglomerative":
                take = min(n, self.agglomerative_sample)
                pick = np.sort(rng.choice(n, take, replace=False))
                ctx["agglo_rows"] = Xw[pick]
                # Ward on L2-normalised rows is the cosine variant: for unit vectors the
                # squared Euclidean distance is 2 * (1 - cosine similarity).
                ctx["agglo_tree"] = linkage(Xw[pick].astype(np.float64), method="ward")
            setup = time.perf_counter() - t0
            for k in ks:
                t0 = time.perf_counter()
                model = self._fit_candidate(algorithm, k, Xw, self.random_state, ctx)
                record(
                    algorithm,
                    k,
                    model,
                    time.perf_counter() - t0 + setup / len(ks),
                    0.0,
                    (algorithm, k),
                )

        results = pd.DataFrame(rows)
        self._select(results, models)
        self._finalise(Xw)
        return self

    def _resolve_metric(self, X: np.ndarray) -> str:
        if self.metric != "auto":
            return self.metric
        norms = np.linalg.norm(X, axis=1)
        norms = norms[norms > 1e-12]
        if len(norms) and norms.std() <= 0.05 * norms.mean():
            return "cosine"
        return "euclidean"

    def _working(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "metric_", "euclidean") == "cosine":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            return (X / np.where(norms > 1e-12, norms, 1.0)).astype(np.float32)
        return X

    def _min_cluster_sizes(self, n: int, ks: list[int]) -> list[int]:
        """HDBSCAN has no k: try minimum cluster sizes that would allow the k grid's extremes."""
        hi = max(5, n // (2 * min(ks)))
        lo = max(5, n // (4 * max(ks)))
        sizes = np.unique(np.geomspace(lo, hi, num=6).round().astype(int))
        return [int(s) for s in sizes]

    # ------------------------------------------------------------------ scoring
    def _score(
        self,
        algorithm: str,
        param: int,
        model: _Model,
        Xw: np.ndarray,
        D_sil: np.ndarray,
        sil_idx: np.ndarray,
        stab_idx: np.ndarray,
        ctx: dict[str, Any],
        noise: float,
        refit: tuple[str, int],
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        nan = float("nan")
        row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS, nan)
        row.update(algorithm=algorithm, param=int(param), noise_share=noise, selected=False)
        if model.gmm is None and len(model.centers) < 2:
            row.update(k=len(model.centers), viable=False, seconds=time.perf_counter() - t0)
            return row
        labels = model.predict(Xw)
        assigned = labels >= 0
        present = np.unique(labels[assigned])
        row["k"] = len(present)
        if len(present) < 2:
            row.update(viable=False, seconds=time.perf_counter() - t0)
            return row
        if model.gmm is None:
            centers = model.centers
        else:
            centers = np.vstack([Xw[labels == c].mean(axis=0) for c in present])
            remap = np.full(labels.max() + 1, -1)
            remap[present] = np.arange(len(present))
            labels = remap[labels]
        lab_a, Xa = labels[assigned], Xw[assigned]
        row["inertia"] = float(((Xa - centers[lab_a]) ** 2).sum())
        row["davies_bouldin"] = float(davies_bouldin_score(Xa, lab_a))
        row["calinski_harabasz"] = float(calinski_harabasz_score(Xa, lab_a))
        s_lab = labels[sil_idx]
        keep = s_lab >= 0
        if len(np.unique(s_lab[keep])) >= 2 and keep.sum() > len(np.unique(s_lab[keep])):
            row["silhouette"] = float(
                silhouette_score(D_sil[np.ix_(keep, keep)], s_lab[keep], metric="precomputed")
            )
        if model.gmm is not None:
            Z = model.reducer.transform(Xw) if model.reducer is not None else Xw
            row["bic"] = float(model.gmm.bic(Z.astype(np.float64)))
        row["min_share"] = float(np.bincount(lab_a).min() / len(labels))
        row["evidence"] = score_reduced(ctx["Z"], labels)
        row["evidence_share"] = ctx["reducer"].explained
        row["stability"], row["prediction_strength"] = self._stability(
            refit, Xw, stab_idx, labels[stab_idx], ctx
        )
        row["usable"] = bool(noise <= self.max_noise and np.isfinite(row["silhouette"]))
        row["viable"] = bool(row["usable"] and not (row["stability"] < self.min_stability))
        row["seconds"] = time.perf_counter() - t0
        return row

    def _stability(
        self,
        refit: tuple[str, int],
        Xw: np.ndarray,
        idx: np.ndarray,
        reference: np.ndarray,
        ctx: dict[str, Any],
    ) -> tuple[float, float]:
        """Mean ARI and prediction strength of the candidate against refits on 80 % subsamples."""
        if self.stability_resamples <= 0:
            return float("nan"), float("nan")
        algorithm, param = refit
        rows = Xw[idx]
        rng = np.random.default_rng(self.random_state + 7919)
        scores, strengths = [], []
        for b in range(self.stability_resamples):
            sub = np.sort(rng.choice(len(rows), int(0.8 * len(rows)), replace=False))
            seed = self.random_state + 1 + b
            part = rows[sub]
            if algorithm == "kmeans":
                k = min(param, len(part) - 1)
                labels, _ = _nearest(rows, self._kmeans(part, k, seed, n_init=1))
            elif algorithm == "agglomerative":
                # The subsample (hence the tree) does not depend on k: build it once.
                trees = ctx.setdefault("stability_trees", {})
                if b not in trees:
                    trees[b] = linkage(part.astype(np.float64), method="ward")
                tree = trees[b]
                cut = fcluster(tree, t=param, criterion="maxclust") - 1
                labels, _ = _nearest(rows, _centers_of(part, cut)[0])
            elif algorithm == "gmm":
                reducer = ctx["reducer"]
                Zp = reducer.transform(part) if reducer is not None else part
                Zr = reducer.transform(rows) if reducer is not None else rows
                labels = self._gmm(Zp, min(param, len(Zp) - 1), seed).predict(Zr)
            else:
                reducer = ctx["reducer"]
                Zp = reducer.transform(part) if reducer is not None else part
                mcs = max(2, int(round(param * len(part) / len(Xw))))
                raw = self._hdbscan(Zp, mcs)
                if (raw >= 0).sum() == 0:
                    scores.append(0.0)
                    strengths.append(0.0)
                    continue
                labels, _ = _nearest(rows, _centers_of(part, raw)[0])
            scores.append(adjusted_rand_score(reference, labels))
            strengths.append(prediction_strength(reference, labels))
        return float(np.mean(scores)), float(np.mean(strengths))

    # ------------------------------------------------------------------ selection
    def _select(self, results: pd.DataFrame, models: list[_Model]) -> None:
        results = results.reindex(columns=RESULT_COLUMNS)
        params = SelectionParams(
            max_noise=self.max_noise,
            min_stability=self.min_stability,
            min_share=self.min_share,
            silhouette_ratio=self.silhouette_ratio,
        )
        pinned = self.k_min if self.k_min == self.k_max_ else None
        selection = select(
            results, k_min=int(self.k_min), k_max=int(self.k_max_), params=params, pinned=pinned
        )
        best = selection.chosen.index
        results["selected"] = False
        results.loc[best, "selected"] = True
        viable = results[results["viable"].eq(True)]
        self.selection_ = selection
        self.results_ = results
        self.algorithm_ = selection.chosen.algorithm
        self.k_ = selection.chosen.k
        self._final = models[best]
        self.knee_k_ = self._knee(results, self.algorithm_)
        scored = viable if len(viable) else results[results["silhouette"].notna()]
        self.disagreement_ = "; ".join([*self._favourites(scored), *selection.notes])
        self.rule_ = (
            f"{selection.rule}; Davies-Bouldin {results.loc[best, 'davies_bouldin']:.3f}, "
            f"Calinski-Harabasz {results.loc[best, 'calinski_harabasz']:.1f} ({self.metric_})"
        )
        self.params_ = {
            "k_min": int(self.k_min),
            "k_max": int(self.k_max_),
            "k_grid": sorted(
                {int(k) for k in results.loc[results["algorithm"] != "hdbscan", "k"].dropna()}
            ),
            "algorithms": list(self.algorithms),
            "metric": self.metric_,
            "random_state": int(self.random_state),
        }

    def _favourites(self, viable: pd.DataFrame) -> list[str]:
        """Metrics whose own favourite k differs from the chosen one, and the inertia knee."""
        favourites = {
            "silhouette": viable["silhouette"].idxmax(),
            "davies_bouldin": viable["davies_bouldin"].idxmin(),
            "calinski_harabasz": viable["calinski_harabasz"].idxmax(),
        }
        if viable["stability"].notna().any():
            favourites["stability"] = viable["stability"].idxmax()
        gmm_rows = viable[viable["algorithm"] == "gmm"]
        if gmm_rows["bic"].notna().any():
            favourites["bic"] = gmm_rows["bic"].idxmin()
        notes = [
            f"{metric} prefers {viable.loc[idx, 'algorithm']} k={int(viable.loc[idx, 'k'])}"
            for metric, idx in favourites.items()
            if int(viable.loc[idx, "k"]) != self.k_
        ]
        if self.knee_k_ is not None and self.knee_k_ != self.k_:
            notes.append(f"the inertia knee of {self.algorithm_} is at k={self.knee_k_}")
        return notes

    def _finalise(self, Xw: np.ndarray) -> None:
        """Fix the label numbering and centres of the chosen model; labels_ comes from predict."""
        model = self._final
        if model.gmm is not None:
            comps = model.predict(Xw)
            present = np.unique(comps)
            label_map = np.full(model.gmm.n_components, -1, dtype=np.int64)
            label_map[present] = np.arange(len(present))
            # A component that won no training row still needs an answer for new rows:
            # the present component whose mean is nearest.
            means = model.gmm.means_
            for c in np.flatnonzero(label_map < 0):
                label_map[c] = label_map[
                    present[((means[present] - means[c]) ** 2).sum(1).argmin()]
                ]
            model.label_map = label_map
            model.centers = np.vstack([Xw[comps == c].mean(axis=0) for c in present])
        else:
            # Drop centres that win no training row (possible when a sample-fitted hierarchy
            # is assigned to all rows): k_ then counts clusters that exist.
            won = np.unique(model.predict(Xw))
            won = won[won >= 0]
            if len(won) < len(model.centers):
                model.centers = model.centers[won]
                if model.radius is not None:
                    model.radius = model.radius[won]
        self.cluster_centers_ = np.asarray(model.centers, dtype=np.float32)
        self.labels_ = model.predict(Xw)
        self.k_ = int(len(self.cluster_centers_))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Assign rows to the chosen clusters (reproduces ``labels_`` on the training rows).

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Feature matrix built like the training one.

        Returns
        -------
        ndarray of int of shape (n_rows,)
            Cluster of each row; -1 is noise (only with ``noise="keep"`` and HDBSCAN).
        """
        check_is_fitted(self, "labels_")
        return self._final.predict(self._working(self._check_x(X)))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the Euclidean distance of each row to each cluster centre (working space).

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Feature matrix built like the training one.

        Returns
        -------
        ndarray of shape (n_rows, k_)
            Distances to ``cluster_centers_``.
        """
        check_is_fitted(self, "labels_")
        Xw = self._working(self._check_x(X)).astype(np.float64)
        return pairwise_distances(Xw, self.cluster_centers_.astype(np.float64))

    def fit_predict(self, X: np.ndarray, y: object = None) -> np.ndarray:
        """Fit the sweep and return ``labels_``.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Feature matrix.
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        ndarray of int
            The training labels.
        """
        return self.fit(X).labels_

    def __getstate__(self) -> dict[str, Any]:
        # skops cannot serialise a DataFrame's internals: keep the sweep table as plain lists.
        state = dict(super().__getstate__())
        if isinstance(state.get("results_"), pd.DataFrame):
            state["results_"] = {"__dataframe__": state["results_"].to_dict(orient="list")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        table = state.get("results_")
        if isinstance(table, dict) and "__dataframe__" in table:
            state = dict(state)
            state["results_"] = pd.DataFrame(table["__dataframe__"])
        super().__setstate__(state)

    def _check_x(self, X: np.ndarray) -> np.ndarray:
        X = check_array(X, dtype=np.float32)
        if X.shape[1] != self.n_features_in_:
            raise ConfigError(
                f"X has {X.shape[1]} features; the sweep was fitted on {self.n_features_in_}",
                hint="build features with the same FeatureBuilder as in training",
            )
        return X

    @staticmethod
    def _knee(results: pd.DataFrame, algorithm: str) -> int | None:
        from kneed import KneeLocator

        part = results[(results["algorithm"] == algorithm) & results["inertia"].notna()]
        part = part.groupby("k")["inertia"].min().sort_index()
        if len(part) < 3:
            return None
        knee = KneeLocator(
            part.index.to_numpy(), part.to_numpy(), curve="convex", direction="decreasing"
        ).knee
        return None if knee is None else int(knee)
