"""Candidate held-out scores of the gate's silhouette regime (text), for ``gate_quality.py``.

Each scorer maps (held-out rows, training rows, a labeling of both) to a function of bootstrap
row multiplicities, like :func:`clusterflow.cluster.comparison._evidence_on_sample`.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances

from clusterflow.cluster.comparison import _evidence_on_sample, _weighted_silhouette
from clusterflow.cluster.evidence import Reducer, heldout_loglik


def on_sphere(X: np.ndarray) -> bool:
    norms = np.linalg.norm(X, axis=1)
    return bool(norms.std() <= 0.05 * norms.mean())


def unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def log_bessel_iv(v: float, x: np.ndarray) -> np.ndarray:
    """log I_v(x) by the uniform (Debye) expansion, with its first correction (large v)."""
    x = np.asarray(x, dtype=float)
    z = x / v
    s = np.sqrt(1 + z**2)
    eta = s + np.log(z / (1 + s))
    t = 1 / s
    u1 = (3 * t - 5 * t**3) / 24
    return -0.5 * np.log(2 * np.pi * v) + v * eta - 0.5 * np.log(s) + np.log1p(u1 / v)


def vmf_log_norm(d: int, kappa: np.ndarray) -> np.ndarray:
    """log C_d(kappa) of the von Mises-Fisher density on the unit sphere in d dimensions."""
    v = d / 2 - 1
    return v * np.log(kappa) - (d / 2) * np.log(2 * np.pi) - log_bessel_iv(v, kappa)


def kappa_of(rbar: np.ndarray, d: int) -> np.ndarray:
    """Banerjee et al. (2005) approximation of the concentration from the mean resultant."""
    rbar = np.clip(rbar, 1e-6, 1 - 1e-9)
    return rbar * (d - rbar**2) / (1 - rbar**2)


def vmf_terms(
    U_fit: np.ndarray, lab_fit: np.ndarray, U: np.ndarray, lab: np.ndarray, shared: bool
) -> np.ndarray:
    """Held-out log-density of each row under its cluster's vMF fitted on the training rows."""
    n_fit, d = U_fit.shape
    ids, counts = np.unique(lab_fit, return_counts=True)
    sums = np.stack([U_fit[lab_fit == c].sum(axis=0) for c in ids])
    lengths = np.linalg.norm(sums, axis=1)
    mus = sums / np.maximum(lengths[:, None], 1e-12)
    if shared:
        kappas = np.full(len(ids), kappa_of(lengths.sum() / n_fit, d))
    else:
        kappas = kappa_of(lengths / counts, d)
    logc = vmf_log_norm(d, kappas)
    all_sum = U_fit.sum(axis=0)
    all_mu = all_sum / np.linalg.norm(all_sum)
    all_kappa = kappa_of(np.linalg.norm(all_sum) / n_fit, d)
    out = np.empty(len(U))
    index = {int(c): i for i, c in enumerate(ids) if counts[i] >= 2}
    for c in np.unique(lab):
        m = lab == c
        i = index.get(int(c))
        if i is None:
            out[m] = np.log(1 / n_fit) + vmf_log_norm(d, all_kappa) + all_kappa * U[m] @ all_mu
        else:
            out[m] = np.log(counts[i] / n_fit) + logc[i] + kappas[i] * U[m] @ mus[i]
    return out


def centroid_terms(
    X_fit: np.ndarray, lab_fit: np.ndarray, X: np.ndarray, lab: np.ndarray, kind: str
) -> np.ndarray:
    """Per held-out row: distance to the nearest other training centroid minus to its own.

    ``kind`` "margin": b - a; "silhouette": (b - a) / max(a, b) (the simplified silhouette).
    Cosine distance on the sphere, euclidean otherwise. A label without training rows scores
    the worst value (-2 for the cosine margin, -1 for the silhouette, -max distance otherwise).
    """
    sphere = on_sphere(X_fit)
    ids = np.unique(lab_fit)
    cents = np.stack([X_fit[lab_fit == c].mean(axis=0) for c in ids])
    if sphere:
        D = 1 - unit(X) @ unit(cents).T
    else:
        D = pairwise_distances(X, cents)
    pos = {int(c): i for i, c in enumerate(ids)}
    own_idx = np.array([pos.get(int(c), -1) for c in lab])
    ok = own_idx >= 0
    a = np.where(ok, D[np.arange(len(X)), np.maximum(own_idx, 0)], np.nan)
    Dm = D.copy()
    Dm[np.flatnonzero(ok), own_idx[ok]] = np.inf
    b = Dm.min(axis=1)
    if kind == "margin":
        worst = -2.0 if sphere else -float(D.max())
        return np.where(ok, b - a, worst)
    return np.where(ok, (b - a) / np.maximum(np.maximum(a, b), 1e-12), -1.0)


def fit_silhouette_terms(D: np.ndarray, lab_fit: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Out-of-sample silhouette of each held-out row against the training rows.

    ``D``: distances of the held-out rows (rows) to the training rows (columns). a: mean
    distance to the training rows of the row's own cluster, b: the smallest mean distance to
    the training rows of another cluster; (b - a) / max(a, b). A label without training rows
    scores -1.
    """
    ids, lab_codes = np.unique(lab_fit, return_inverse=True)
    onehot = np.zeros((len(lab_fit), len(ids)))
    onehot[np.arange(len(lab_fit)), lab_codes] = 1.0
    M = (D @ onehot) / onehot.sum(axis=0)
    pos = {int(c): i for i, c in enumerate(ids)}
    own = np.array([pos.get(int(c), -1) for c in lab])
    ok = own >= 0
    rows = np.flatnonzero(ok)
    a = np.full(len(lab), np.nan)
    a[rows] = M[rows, own[rows]]
    M[rows, own[rows]] = np.inf
    b = M.min(axis=1)
    s = np.full(len(lab), -1.0)
    s[rows] = (b[rows] - a[rows]) / np.maximum(np.maximum(a[rows], b[rows]), 1e-12)
    return s


def prediction_strength_draws(
    test: np.ndarray, lab: np.ndarray, W: np.ndarray, reduce: str
) -> tuple[float, np.ndarray]:
    """Prediction strength of the clustering ``test`` of the held-out rows given ``lab``.

    ``test``: k-means at the labeling's k fitted on the held-out rows themselves (once, not per
    resample). Per test cluster, the weighted share of its pairs that ``lab`` puts together;
    ``reduce`` "min" (Tibshirani and Walther) or "mean" over the test clusters.
    """
    _, t = np.unique(test, return_inverse=True)
    _, o = np.unique(lab, return_inverse=True)
    kt, ko = t.max() + 1, o.max() + 1
    cell = t * ko + o

    def one(w: np.ndarray) -> float:
        w = w.astype(float)
        table = np.bincount(cell, weights=w, minlength=kt * ko).reshape(kt, ko)
        table2 = np.bincount(cell, weights=w**2, minlength=kt * ko).reshape(kt, ko)
        sizes, sizes2 = table.sum(axis=1), table2.sum(axis=1)
        pairs = (sizes**2 - sizes2) / 2
        together = ((table**2 - table2) / 2).sum(axis=1)
        ok = pairs > 0
        share = together[ok] / pairs[ok]
        return float(share.min() if reduce == "min" else np.average(share, weights=sizes[ok]))

    return one(np.ones(len(lab))), np.array([one(w) for w in W])


TEXT_SCORERS = [
    "out-of-sample",  # the gate as it is (comparison._evidence_on_sample): euclidean silhouette
    "silhouette-cosine",  # the gate before branch gate-text: cosine silhouette on the sphere
    "silhouette",  # provisional_labeling_score: euclidean silhouette
    "silhouette-q0.25",  # silhouette of (squared euclidean) ** 0.25
    "silhouette-q0.75",
    "vmf",
    "vmf-shared",
    "gauss16",
    "gauss32",
    "gauss64",
    "centroid-margin",
    "centroid-silhouette",
    "fit-silhouette",  # against the training rows; cosine on the sphere
    "fit-silhouette-euclid",
    "ps-min",
    "ps-mean",
]


class TextScorers:
    """Per seed: what every scorer needs of the held-out and training rows, computed once."""

    def __init__(self, X_held: np.ndarray, X_fit: np.ndarray, seed: int) -> None:
        self.X, self.X_fit, self.seed = X_held, X_fit, seed
        metric = "cosine" if on_sphere(X_held) else "euclidean"
        self.dist = pairwise_distances(X_held, metric=metric).astype(np.float32)
        self.dist_euclid = pairwise_distances(X_held).astype(np.float32)
        self.U, self.U_fit = unit(X_held), unit(X_fit)
        self.dist_fit = pairwise_distances(X_held, X_fit, metric=metric)
        self.dist_fit_euclid = pairwise_distances(X_held, X_fit)
        self._test: dict[int, np.ndarray] = {}
        self.Z = {}
        for dims in (16, 32, 64):
            r = Reducer(X_fit, max_dims=dims, random_state=seed)
            self.Z[dims] = (r.transform(X_fit), r.transform(X_held))

    def draws(self, scorer: str, lab_fit: np.ndarray, lab: np.ndarray, W: np.ndarray):
        """(score on all held-out rows, score on each resample given as rows of W)."""
        n = len(lab)
        if scorer.startswith("ps-"):
            k = len(np.unique(lab))
            test = self._test.get(k)
            if test is None:
                from sklearn.cluster import KMeans

                km = KMeans(n_clusters=k, n_init=2, random_state=self.seed)
                test = self._test[k] = km.fit_predict(self.X)
            return prediction_strength_draws(test, lab, W, scorer[3:])
        if scorer.startswith("silhouette-q"):
            # silhouette of (squared euclidean distance) ** q: q=1 is the cosine silhouette
            # on the sphere, q=0.5 the euclidean one
            q = float(scorer[len("silhouette-q") :])
            dist = (self.dist_euclid.astype(np.float64) ** 2) ** q
            dist = dist.astype(np.float32)
            full = _weighted_silhouette(dist, lab, np.ones(n, dtype=int))
            return full, np.array([_weighted_silhouette(dist, lab, w) for w in W])
        if scorer == "out-of-sample":
            on_sample = _evidence_on_sample(self.X, (lab, lab), None, self.seed)[0]
            return on_sample(np.ones(n, dtype=int)), np.array([on_sample(w) for w in W])
        if scorer in ("silhouette-cosine", "silhouette"):
            dist = self.dist if scorer == "silhouette-cosine" else self.dist_euclid
            full = _weighted_silhouette(dist, lab, np.ones(n, dtype=int))
            return full, np.array([_weighted_silhouette(dist, lab, w) for w in W])
        if scorer.startswith("vmf"):
            terms = vmf_terms(self.U_fit, lab_fit, self.U, lab, shared=scorer == "vmf-shared")
        elif scorer.startswith("gauss"):
            Z_fit, Z = self.Z[int(scorer[5:])]
            terms = heldout_loglik(Z_fit, lab_fit, Z, lab)
        elif scorer == "fit-silhouette":
            terms = fit_silhouette_terms(self.dist_fit, lab_fit, lab)
        elif scorer == "fit-silhouette-euclid":
            terms = fit_silhouette_terms(self.dist_fit_euclid, lab_fit, lab)
        elif scorer.startswith("centroid"):
            terms = centroid_terms(self.X_fit, lab_fit, self.X, lab, scorer.split("-")[1])
        else:
            raise ValueError(scorer)
        return float(terms.mean()), W @ terms / n
