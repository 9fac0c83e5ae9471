"""The clustering families the sweep tries: one small class per algorithm behind one protocol.

Every family knows its parameter grid (k for k-means, the hierarchy and the mixture; a minimum
cluster size for HDBSCAN, which finds its own k), how to fit one candidate on the sweep's
working rows, how to refit on a subsample for the stability check and assign the evaluation
rows, and how to describe itself. A fitted candidate is a :class:`Candidate`: cluster centres
(optionally a noise radius) or a Gaussian mixture, enough state to assign new rows, picklable.

Adding a family means one class here and one entry in :data:`FAMILIES` (and the config's enum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from clusterflow.cluster.evidence import Reducer
from clusterflow.cluster.labels import compact_labels, compacting_map

__all__ = [
    "FAMILIES",
    "AgglomerativeFamily",
    "Algorithm",
    "Candidate",
    "GaussianMixtureFamily",
    "HDBSCANFamily",
    "KMeansFamily",
    "Space",
    "Subsample",
    "centers_of",
    "nearest",
]


def nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def centers_of(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each non-noise cluster, and the cluster ids in order."""
    ids = np.unique(labels[labels >= 0])
    centers = np.vstack([X[labels == c].mean(axis=0) for c in ids])
    return centers, ids


class Candidate:
    """One fitted candidate: enough state to assign points. Picklable (no closures).

    Centre-based families assign to the nearest centre (a row farther from its centre than
    ``radius`` is noise, -1); the Gaussian mixture uses its own ``predict`` on the reduced rows,
    renumbered by ``label_map`` once the candidate is chosen.
    """

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
        """Assign working-space rows to clusters (-1 is noise)."""
        if self.gmm is not None:
            Z = self.reducer.transform(Xw) if self.reducer is not None else Xw
            comps = self.gmm.predict(Z).astype(np.int64)
            return comps if self.label_map is None else self.label_map[comps]
        labels, d2 = nearest(Xw, self.centers)
        if self.radius is not None:
            labels = np.where(d2 > self.radius[labels], -1, labels)
        return labels

    def finalise(self, Xw: np.ndarray) -> None:
        """Fix the label numbering and the centres once this candidate is chosen."""
        if self.gmm is not None:
            centers, present = centers_of(Xw, self.predict(Xw))
            label_map = compacting_map(present, self.gmm.n_components)
            # A component that won no training row still needs an answer for new rows:
            # the present component whose mean is nearest.
            means = self.gmm.means_
            for c in np.flatnonzero(label_map < 0):
                label_map[c] = label_map[
                    present[((means[present] - means[c]) ** 2).sum(1).argmin()]
                ]
            self.label_map = label_map
            self.centers = centers
            return
        # Drop centres that win no training row (possible when a sample-fitted hierarchy
        # is assigned to all rows): k_ then counts clusters that exist.
        won = np.unique(self.predict(Xw))
        won = won[won >= 0]
        if len(won) < len(self.centers):
            self.centers = self.centers[won]
            if self.radius is not None:
                self.radius = self.radius[won]


@dataclass(frozen=True)
class Space:
    """What every candidate of one sweep is fitted on: the working rows and their reduction."""

    X: np.ndarray
    """Working rows (L2-normalised under the cosine metric)."""
    reducer: Reducer
    """At most ``reduce_dims`` PCA components of the continuous columns."""
    Z: np.ndarray
    """``reducer.transform(X)``: where HDBSCAN and the mixture work."""
    random_state: int


@dataclass(frozen=True)
class Subsample:
    """One 80 % subsample of the stability rows, refitted by every candidate."""

    number: int
    seed: int
    part: np.ndarray
    """The subsample the refit sees."""
    rows: np.ndarray
    """The stability rows the refit assigns."""


class Algorithm(Protocol):
    """What the sweep asks of a clustering family."""

    name: ClassVar[str]

    def grid(self, n: int, ks: list[int]) -> list[int]:
        """Return the parameters to try on ``n`` rows when the asked cluster counts are ``ks``."""
        ...

    def prepare(self, space: Space, rng: np.random.Generator) -> None:
        """Work shared by every parameter, done once per sweep before the first fit."""
        ...

    def fit(self, space: Space, param: int) -> tuple[Candidate, float]:
        """Fit one candidate on the working rows; return it and its noise share."""
        ...

    def refit(self, space: Space, param: int, sub: Subsample) -> np.ndarray | None:
        """Refit on ``sub.part`` and assign ``sub.rows`` (None: the refit found no cluster)."""
        ...

    def describe(self) -> str:
        """One line saying what this family fits and with which settings."""
        ...


def fit_kmeans(
    X: np.ndarray, k: int, seed: int, *, minibatch_threshold: int, n_init: int = 2
) -> np.ndarray:
    """Centres of k-means on ``X`` (``MiniBatchKMeans`` above ``minibatch_threshold`` rows)."""
    if len(X) > minibatch_threshold:
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


class _Family:
    """Defaults of a family: its parameter is the cluster count, and it needs no set-up."""

    def grid(self, n: int, ks: list[int]) -> list[int]:  # noqa: D102
        return ks

    def prepare(self, space: Space, rng: np.random.Generator) -> None:  # noqa: D102
        return None


@dataclass
class KMeansFamily(_Family):
    """k-means, with ``MiniBatchKMeans`` above ``minibatch_threshold`` rows."""

    name: ClassVar[str] = "kmeans"
    minibatch_threshold: int = 20000

    def fit(self, space: Space, param: int) -> tuple[Candidate, float]:  # noqa: D102
        centers = fit_kmeans(
            space.X, param, space.random_state, minibatch_threshold=self.minibatch_threshold
        )
        return Candidate(self.name, centers), 0.0

    def refit(self, space: Space, param: int, sub: Subsample) -> np.ndarray | None:  # noqa: D102
        # k-means++ seeding dominates the cost on wide data: the refits use a single start.
        k = min(param, len(sub.part) - 1)
        centers = fit_kmeans(
            sub.part, k, sub.seed, minibatch_threshold=self.minibatch_threshold, n_init=1
        )
        return nearest(sub.rows, centers)[0]

    def describe(self) -> str:  # noqa: D102
        return f"k-means (MiniBatchKMeans above {self.minibatch_threshold} rows)"


@dataclass
class AgglomerativeFamily(_Family):
    """Ward's hierarchy, built once per sweep on at most ``sample`` rows and cut at every k."""

    name: ClassVar[str] = "agglomerative"
    sample: int = 5000
    _rows: np.ndarray | None = field(default=None, repr=False)
    _tree: np.ndarray | None = field(default=None, repr=False)
    _subtrees: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def prepare(self, space: Space, rng: np.random.Generator) -> None:  # noqa: D102
        n = len(space.X)
        pick = np.sort(rng.choice(n, min(n, self.sample), replace=False))
        self._rows = space.X[pick]
        # Ward on L2-normalised rows is the cosine variant: for unit vectors the squared
        # Euclidean distance is 2 * (1 - cosine similarity).
        self._tree = linkage(space.X[pick].astype(np.float64), method="ward")
        self._subtrees = {}

    def fit(self, space: Space, param: int) -> tuple[Candidate, float]:  # noqa: D102
        if self._rows is None or self._tree is None:
            raise RuntimeError("AgglomerativeFamily.prepare must run before fit")
        cut = fcluster(self._tree, t=param, criterion="maxclust") - 1
        return Candidate(self.name, centers_of(self._rows, cut)[0]), 0.0

    def refit(self, space: Space, param: int, sub: Subsample) -> np.ndarray | None:  # noqa: D102
        # The subsample (hence the tree) does not depend on k: build it once per subsample.
        if sub.number not in self._subtrees:
            self._subtrees[sub.number] = linkage(sub.part.astype(np.float64), method="ward")
        cut = fcluster(self._subtrees[sub.number], t=param, criterion="maxclust") - 1
        return nearest(sub.rows, centers_of(sub.part, cut)[0])[0]

    def describe(self) -> str:  # noqa: D102
        return f"Ward agglomerative (hierarchy on at most {self.sample} rows, cut at each k)"


@dataclass
class HDBSCANFamily(_Family):
    """HDBSCAN on the reduced rows; its parameter is the minimum cluster size, not k."""

    name: ClassVar[str] = "hdbscan"
    keep_noise: bool = False

    def grid(self, n: int, ks: list[int]) -> list[int]:
        """Return minimum cluster sizes that would allow the k grid's extremes."""
        hi = max(5, n // (2 * min(ks)))
        lo = max(5, n // (4 * max(ks)))
        sizes = np.unique(np.geomspace(lo, hi, num=6).round().astype(int))
        return [int(s) for s in sizes]

    @staticmethod
    def _labels(Z: np.ndarray, min_cluster_size: int) -> np.ndarray:
        import hdbscan

        # A small min_samples keeps the noise share low (the default equals min_cluster_size,
        # which labels most of a diffuse text set as noise).
        model = hdbscan.HDBSCAN(
            min_cluster_size=int(min_cluster_size), min_samples=min(int(min_cluster_size), 5)
        )
        return model.fit_predict(Z)

    def fit(self, space: Space, param: int) -> tuple[Candidate, float]:  # noqa: D102
        raw = self._labels(space.Z, param)
        noise_share = float((raw < 0).mean())
        if (raw >= 0).sum() == 0:
            return Candidate(self.name, np.empty((0, space.X.shape[1]))), noise_share
        centers, ids = centers_of(space.X, raw)
        radius = None
        if self.keep_noise:
            members = raw >= 0
            lab = compact_labels(raw)[members]
            d2 = ((space.X[members] - centers[lab]) ** 2).sum(axis=1)
            radius = np.array([d2[lab == i].max() for i in range(len(ids))]) * (1 + 1e-9)
        return Candidate(self.name, centers, radius=radius), noise_share

    def refit(self, space: Space, param: int, sub: Subsample) -> np.ndarray | None:  # noqa: D102
        mcs = max(2, int(round(param * len(sub.part) / len(space.X))))
        raw = self._labels(space.reducer.transform(sub.part), mcs)
        if (raw >= 0).sum() == 0:
            return None
        return nearest(sub.rows, centers_of(sub.part, raw)[0])[0]

    def describe(self) -> str:  # noqa: D102
        noise = "kept as -1" if self.keep_noise else "assigned to the nearest centre"
        return f"HDBSCAN on the reduced rows (noise {noise})"


def fit_mixture(Z: np.ndarray, k: int, seed: int, n_init: int) -> GaussianMixture:
    """Fit a Gaussian mixture of ``k`` components (full covariances up to 8 dimensions).

    Of ``n_init`` starts the one with the highest likelihood is kept.
    """
    cov = "full" if Z.shape[1] <= 8 else "diag"
    Z = np.asarray(Z, dtype=np.float64)
    gmm = GaussianMixture(
        n_components=k, covariance_type=cov, n_init=n_init, random_state=seed, reg_covar=1e-4
    )
    return gmm.fit(Z)


@dataclass
class GaussianMixtureFamily(_Family):
    """A Gaussian mixture on the reduced rows, fitted on at most ``sample`` of them.

    Each fit keeps the best of ``n_init`` starts.
    """

    name: ClassVar[str] = "gmm"
    sample: int = 10000
    n_init: int = 2

    def fit(self, space: Space, param: int) -> tuple[Candidate, float]:  # noqa: D102
        Z = space.Z
        seed = space.random_state
        if len(Z) > self.sample:
            pick = np.random.default_rng(seed).choice(len(Z), self.sample, replace=False)
            Z = Z[np.sort(pick)]
        gmm = fit_mixture(Z, param, seed, self.n_init)
        empty = np.empty((0, space.X.shape[1]))
        return Candidate(self.name, empty, gmm=gmm, reducer=space.reducer), 0.0

    def refit(self, space: Space, param: int, sub: Subsample) -> np.ndarray | None:  # noqa: D102
        Zp = space.reducer.transform(sub.part)
        Zr = space.reducer.transform(sub.rows)
        return fit_mixture(Zp, min(param, len(Zp) - 1), sub.seed, self.n_init).predict(Zr)

    def describe(self) -> str:  # noqa: D102
        return (
            f"Gaussian mixture on the reduced rows (fitted on at most {self.sample} rows, "
            f"best of {self.n_init} starts)"
        )


FAMILIES: dict[str, Callable[..., Algorithm]] = {
    family.name: family
    for family in (KMeansFamily, AgglomerativeFamily, HDBSCANFamily, GaussianMixtureFamily)
}
"""The families by the name the config and the sweep table use, in the default order."""
