"""Sweep clustering algorithms over a range of cluster counts and choose one, with reasons.

How k is chosen (copied into the README)
----------------------------------------
Every candidate (algorithm, k) is fitted on the feature matrix (the Gaussian mixtures only where
the rule could choose one: see ``ClusterSweep._deferred``) and scored with the same metrics:
silhouette (cosine distance for text-dominated features, computed on a fixed random sample so
every candidate is judged on the same rows), Davies-Bouldin, Calinski-Harabasz,
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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import pairwise_distances
from sklearn.utils.validation import check_array, check_is_fitted
from threadpoolctl import threadpool_limits

from clusterflow.cluster.algorithms import FAMILIES, Algorithm, Candidate, Space
from clusterflow.cluster.evidence import MIN_EXPLAINED, Reducer
from clusterflow.cluster.grid import check_options, default_k_max, k_grid
from clusterflow.cluster.metrics import RESULT_COLUMNS, Judge, favourites, knee, score_candidate
from clusterflow.cluster.selection import PARTITIONS, SelectionParams, partition_stands, select
from clusterflow.errors import ConfigError
from clusterflow.progress import report

__all__ = ["ALGORITHMS", "RESULT_COLUMNS", "ClusterSweep", "default_k_max", "k_grid"]

ALGORITHMS = tuple(FAMILIES)
"""The families a sweep may try (:data:`clusterflow.cluster.algorithms.FAMILIES`)."""


@dataclass
class _Progress:
    """Candidates fitted so far, of all the families' (the mixtures included until skipped)."""

    total: int
    done: int = 0


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
    stability_resamples : int, default=6
        Number of 80 % subsamples refitted per candidate (0 disables stability). Six, not
        three: with three, stability and prediction strength were noisy enough that the rule's
        choice moved with the seed more often (``benchmarks/quality/resamples.py``: targets met
        40 -> 44 of 66 over 22 sets x 3 seeds, agreement between seeds 0.880 -> 0.899; ten
        refits met 44 too).
    stability_sample : int, default=2000
        Size of the row set on which stability is measured.
    agglomerative_sample : int, default=5000
        Above this many rows the hierarchy is built on a sample and the rest is assigned to
        the nearest centre (Ward linkage is quadratic in memory).
    minibatch_threshold : int, default=20000
        Above this many rows k-means uses ``MiniBatchKMeans``.
    gmm_sample : int, default=10000
        Rows on which the Gaussian mixtures are fitted.
    gmm_n_init : int, default=2
        Starts of each Gaussian mixture fit, the best likelihood kept (on the sample and on
        every stability refit, so that refits do not land on other local optima).
    reduce_dims : int, default=16
        HDBSCAN and the Gaussian mixture work on at most this many PCA components
        (density estimates degrade in high dimension).
    max_noise : float, default=0.10
        Largest HDBSCAN noise share of a viable candidate.
    min_stability : float, default=0.5
        Smallest stability of a viable candidate.
    min_size : float, default=SelectionParams.min_size
        Smallest size of a viable candidate's smallest cluster, relative to the mean cluster
        size (rows / k).
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
        The k range and grid, the algorithms asked for and those not fitted, the metric and
        the seed.
    skipped_ : list of str
        Families not fitted because the rule could not choose them (``["gmm"]`` where the
        silhouette proposes and a k-means or agglomerative candidate passes every check).
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
        stability_resamples: int = 6,
        stability_sample: int = 2000,
        agglomerative_sample: int = 5000,
        minibatch_threshold: int = 20000,
        gmm_sample: int = 10000,
        gmm_n_init: int = 2,
        reduce_dims: int = 16,
        max_noise: float = 0.10,
        min_stability: float = 0.5,
        min_size: float = SelectionParams.min_size,
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
        self.gmm_n_init = gmm_n_init
        self.reduce_dims = reduce_dims
        self.max_noise = max_noise
        self.min_stability = min_stability
        self.min_size = min_size
        self.silhouette_ratio = silhouette_ratio
        self.random_state = random_state

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

    def _families(self) -> list[Algorithm]:
        settings: dict[str, dict[str, Any]] = {
            "kmeans": {"minibatch_threshold": self.minibatch_threshold},
            "agglomerative": {"sample": self.agglomerative_sample},
            "hdbscan": {"keep_noise": self.noise == "keep"},
            "gmm": {"sample": self.gmm_sample, "n_init": self.gmm_n_init},
        }
        return [FAMILIES[name](**settings[name]) for name in self.algorithms]

    def _fit(self, X: np.ndarray) -> ClusterSweep:
        n = len(X)
        k_min, self.k_max_ = check_options(
            algorithms=self.algorithms,
            known=ALGORITHMS,
            metric=self.metric,
            noise=self.noise,
            k_min=self.k_min,
            k_max=self.k_max,
            n=n,
        )
        self.n_features_in_ = X.shape[1]
        rng = np.random.default_rng(self.random_state)
        self.metric_ = self._resolve_metric(X)
        Xw = self._working(X)
        ks = k_grid(k_min, self.k_max_)
        # Fixed evaluation rows: every candidate is judged on the same sample.
        sil_idx = np.sort(rng.choice(n, min(n, self.silhouette_sample), replace=False))
        D_sil = pairwise_distances(Xw[sil_idx], metric=self.metric_).astype(np.float64)
        np.fill_diagonal(D_sil, 0.0)
        judge = Judge(
            sil_idx=sil_idx,
            D_sil=D_sil,
            stab_idx=np.sort(rng.choice(n, min(n, self.stability_sample), replace=False)),
            resamples=self.stability_resamples,
            max_noise=self.max_noise,
            min_stability=self.min_stability,
            random_state=self.random_state,
        )
        reducer = Reducer(Xw, max_dims=self.reduce_dims, random_state=self.random_state)
        space = Space(
            X=Xw, reducer=reducer, Z=reducer.transform(Xw), random_state=self.random_state
        )
        families = self._families()
        deferred = self._deferred(families, reducer.explained)
        grids = [family.grid(n, ks) for family in families]
        progress = _Progress(total=sum(len(grid) for grid in grids))
        fitted: dict[str, tuple[list[dict[str, Any]], list[Candidate]]] = {}
        for family, grid in zip(families, grids, strict=True):
            if family.name not in deferred:
                fitted[family.name] = self._fit_family(family, grid, space, judge, rng, progress)
        self.skipped_: list[str] = []
        if deferred:
            so_far = pd.DataFrame([row for rows, _ in fitted.values() for row in rows])
            if partition_stands(
                so_far.reindex(columns=RESULT_COLUMNS),
                k_min=int(self.k_min),
                k_max=int(self.k_max_),
                params=self._params(),
                pinned=self._pinned(),
            ):
                self.skipped_ = list(deferred)
                report("sweep", progress.done, progress.done, "candidates")
            else:  # no k-means or agglomerative candidate stands alone: the mixtures may win
                for family, grid in zip(families, grids, strict=True):
                    if family.name in deferred:
                        fitted[family.name] = self._fit_family(
                            family, grid, space, judge, rng, progress
                        )
        # In the order of `algorithms`, whichever family was fitted last.
        order = [family.name for family in families if family.name in fitted]
        rows = [row for name in order for row in fitted[name][0]]
        models = [model for name in order for model in fitted[name][1]]
        self._select(pd.DataFrame(rows), models)
        if self.skipped_:
            self.rule_ += (
                f"; {', '.join(self.skipped_)} not fitted: the likelihood's reduced view holds "
                f"{reducer.explained:.1%} of the variance (under {MIN_EXPLAINED:.0%}), so the "
                "silhouette chose among k-means and agglomerative, and one of them passed every "
                "check"
            )
        chosen = self._final
        chosen.finalise(Xw)
        self.cluster_centers_ = np.asarray(chosen.centers, dtype=np.float32)
        self.labels_ = chosen.predict(Xw)
        self.k_ = int(len(self.cluster_centers_))
        return self

    def _deferred(self, families: list[Algorithm], explained: float) -> list[str]:
        """Return the families fitted only when no k-means or agglomerative candidate stands.

        Where the likelihood's reduced view holds less than ``MIN_EXPLAINED`` of the variance,
        the silhouette proposes among k-means and agglomerative only (see
        :func:`clusterflow.cluster.selection.select`). When one of them passes every viability
        check on its own (:func:`clusterflow.cluster.selection.partition_stands`), the rule
        chooses the same candidate with or without the mixtures, so they are not fitted. On
        the quality benchmark's 10 such sets under 3 seeds (30 sweeps,
        ``benchmarks/quality/skip_mixtures.py``), dropping the mixtures changed no choice and
        took 31-63% of the sweep's time away.
        """
        if explained >= MIN_EXPLAINED or not any(f.name in PARTITIONS for f in families):
            return []
        return [family.name for family in families if family.name == "gmm"]

    def _fit_family(
        self,
        family: Algorithm,
        grid: list[int],
        space: Space,
        judge: Judge,
        rng: np.random.Generator,
        progress: _Progress,
    ) -> tuple[list[dict[str, Any]], list[Candidate]]:
        """Fit and score every candidate of one family; return their rows and models."""
        rows: list[dict[str, Any]] = []
        models: list[Candidate] = []
        t0 = time.perf_counter()
        family.prepare(space, rng)
        setup = (time.perf_counter() - t0) / len(grid)
        for param in grid:
            t0 = time.perf_counter()
            model, noise = family.fit(space, param)
            seconds = time.perf_counter() - t0 + setup
            row = score_candidate(family, param, model, space, judge, noise)
            row["seconds"] += seconds
            rows.append(row)
            models.append(model)
            progress.done += 1
            report("sweep", progress.done, progress.total, "candidates")
        return rows, models

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

    def _params(self) -> SelectionParams:
        """Return the rule's constants this sweep was given."""
        return SelectionParams(
            max_noise=self.max_noise,
            min_stability=self.min_stability,
            min_size=self.min_size,
            silhouette_ratio=self.silhouette_ratio,
        )

    def _pinned(self) -> int | None:
        """Return the k the user fixed (``k_min == k_max``), or None."""
        return int(self.k_min) if self.k_min == self.k_max_ else None

    def _select(self, results: pd.DataFrame, models: list[Candidate]) -> None:
        """Apply the selection rule to the sweep table and keep the chosen candidate."""
        results = results.reindex(columns=RESULT_COLUMNS)
        selection = select(
            results,
            k_min=int(self.k_min),
            k_max=int(self.k_max_),
            params=self._params(),
            pinned=self._pinned(),
        )
        best = selection.chosen.index
        results["selected"] = False
        results.loc[best, "selected"] = True
        viable = results[results["viable"].eq(True)]
        self.selection_ = selection
        self.results_ = results
        self.algorithm_ = selection.chosen.algorithm
        self.k_ = selection.chosen.k
        self._final: Candidate = models[best]
        self.knee_k_ = knee(results, self.algorithm_)
        scored = viable if len(viable) else results[results["silhouette"].notna()]
        notes = favourites(scored, self.k_, self.algorithm_, self.knee_k_)
        self.disagreement_ = "; ".join([*notes, *selection.notes])
        self.rule_: str = (
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
            "not_fitted": list(self.skipped_),
            "metric": self.metric_,
            "random_state": int(self.random_state),
        }

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
            Feature matrix built like the training one; with the cosine metric its rows are
            L2-normalised first, as in training.

        Returns
        -------
        ndarray of shape (n_rows, k_)
            Distances to ``cluster_centers_``.
        """
        check_is_fitted(self, "labels_")
        Xw = self._working(self._check_x(X)).astype(np.float64)
        return pairwise_distances(Xw, self.cluster_centers_.astype(np.float64))

    def __getstate__(self) -> dict[str, Any]:
        # skops cannot serialise a DataFrame's internals: keep the sweep table as plain lists.
        state = dict(super().__getstate__())
        if isinstance(state.get("results_"), pd.DataFrame):
            state["results_"] = {"__dataframe__": state["results_"].to_dict(orient="list")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Sweeps saved before gmm_n_init existed fitted their mixtures with one start.
        state = {"gmm_n_init": 1, **state}
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
