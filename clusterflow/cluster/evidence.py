"""Evidence for a labeling: one number that compares clusterings across k and algorithms.

``labeling_score`` is the classification likelihood of the labeling under a Gaussian per
cluster, penalised like BIC (the hard-assignment form of the integrated completed likelihood,
ICL, of Biernacki, Celeux and Govaert 2000), divided by the number of rows. It is computed on the
continuous columns reduced by PCA to at most 16 dimensions (see :class:`Reducer`), with a
diagonal covariance per cluster above 8 dimensions and a full one below.

Why this and not the silhouette: silhouette rewards splitting a group into pieces that are a
little apart as much as it rewards real gaps (penguins without species: k=3 scores 0.400, k=9
0.398), while the likelihood of the labeling pays for every extra cluster with its parameters
(``log n`` per parameter) and for overlapping clusters (each row is scored under its own
cluster only). Unlike a mixture's BIC it judges the *labeling*, so a k-means, agglomerative,
HDBSCAN or Gaussian-mixture result, or a champion's assignment of new rows, are judged alike.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

__all__ = [
    "MIN_EXPLAINED",
    "Reducer",
    "heldout_loglik",
    "labeling_loglik",
    "labeling_score",
    "n_parameters",
    "prediction_strength",
    "score_reduced",
]

MAX_DIMS = 16
MIN_EXPLAINED = 0.8
FULL_COVARIANCE_DIMS = 8
_REG = 1e-4


class Reducer:
    """Continuous columns, reduced by PCA to at most ``max_dims``.

    Columns with at most 5 distinct values (one-hot indicators) are left out: a Gaussian on a
    two-valued column rewards splitting along it without limit, so a likelihood would carve the
    data by category levels instead of by shape. If every column is discrete, all are kept.
    """

    def __init__(self, X: np.ndarray, *, max_dims: int = MAX_DIMS, random_state: int = 0) -> None:
        rng = np.random.default_rng(random_state)
        rows = X[np.sort(rng.choice(len(X), min(len(X), 10000), replace=False))]
        distinct = np.array([len(np.unique(rows[:, j])) for j in range(X.shape[1])])
        cols = np.flatnonzero(distinct > 5)
        self.cols = cols if len(cols) else np.arange(X.shape[1])
        self.pca: PCA | None = None
        kept = float(rows[:, self.cols].var(axis=0).sum())
        # PCA cannot keep more components than rows: a tiny table keeps what it has.
        dims = min(max_dims, len(rows))
        if len(self.cols) > dims:
            self.pca = PCA(n_components=dims, random_state=random_state)
            self.pca.fit(rows[:, self.cols])
            kept = float(self.pca.explained_variance_.sum())
        total = float(rows.var(axis=0).sum())
        # Share of the data's variance the Gaussian model sees: how far its likelihood speaks
        # for the whole feature space.
        self.explained = kept / total if total > 0 else 1.0

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the reduced continuous columns of ``X``."""
        Z = X[:, self.cols]
        return self.pca.transform(Z) if self.pca is not None else Z


def _cluster_gaussians(
    Z: np.ndarray, lab: np.ndarray, k: int, floor: float
) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """Per cluster: mean, inverse covariance (or inverse variances), log-determinant, log share."""
    n, d = Z.shape
    full = d <= FULL_COVARIANCE_DIMS
    out = []
    for c in range(k):
        part = Z[lab == c]
        mu = part.mean(axis=0)
        diff = part - mu
        log_pi = float(np.log(len(part) / n))
        if full:
            cov = diff.T @ diff / len(part) + floor * np.eye(d)
            _, logdet = np.linalg.slogdet(cov)
            out.append((mu, np.linalg.inv(cov), float(logdet), log_pi))
        else:
            var = (diff**2).mean(axis=0) + floor
            out.append((mu, 1.0 / var, float(np.log(var).sum()), log_pi))
    return out


def _loglik_under(
    Z: np.ndarray, gaussian: tuple[np.ndarray, np.ndarray, float, float]
) -> np.ndarray:
    mu, inv, logdet, log_pi = gaussian
    diff = Z - mu
    if inv.ndim == 2:
        maha = np.einsum("ij,ij->i", diff @ inv, diff)
    else:
        maha = ((diff**2) * inv).sum(axis=1)
    return log_pi - 0.5 * (Z.shape[1] * np.log(2 * np.pi) + logdet + maha)


def labeling_loglik(Z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-row log-likelihood of each row under its own cluster's Gaussian, and the parameters.

    Noise rows (-1) form one more cluster (a labeling that calls rows noise must still explain
    them). Variances get a floor of ``1e-4`` times the mean variance of the data.

    Parameters
    ----------
    Z : ndarray of shape (n_rows, d)
        Reduced continuous features.
    labels : ndarray of int of shape (n_rows,)
        The labeling.

    Returns
    -------
    (ndarray of shape (n_rows,), int)
        Log-likelihood of each row and the number of free parameters.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    floor = _REG * max(float(Z.var(axis=0).mean()), 1e-12)
    _, lab = np.unique(labels, return_inverse=True)
    k = int(lab.max()) + 1
    out = np.empty(n)
    for c, gaussian in enumerate(_cluster_gaussians(Z, lab, k, floor)):
        members = lab == c
        out[members] = _loglik_under(Z[members], gaussian)
    return out, n_parameters(d, k)


def n_parameters(d: int, k: int) -> int:
    """Free parameters of ``k`` cluster Gaussians in ``d`` dimensions and their shares."""
    per_cluster = d + (d * (d + 1) // 2 if d <= FULL_COVARIANCE_DIMS else d)
    return k * per_cluster + (k - 1)


def heldout_loglik(
    Z_fit: np.ndarray, labels_fit: np.ndarray, Z_eval: np.ndarray, labels_eval: np.ndarray
) -> np.ndarray:
    """Log-likelihood of each evaluated row under its cluster's Gaussian fitted on *other* rows.

    The out-of-sample form of :func:`labeling_loglik`: the Gaussians and cluster shares are
    estimated on ``Z_fit`` as labeled by ``labels_fit``, and each row of ``Z_eval`` is scored
    under the Gaussian of its label in ``labels_eval``. No parameter penalty is needed: a
    labeling with too many clusters pays on rows its Gaussians were not fitted to, whatever
    the number of evaluated rows (the in-sample BIC penalty per row, ``log n / 2n`` per
    parameter, grows as the evaluated rows shrink, and on a few dozen rows prefers coarse
    labelings). A label with fewer than two fitted rows (or none) is scored under the Gaussian
    of all fitted rows with the share of one row: a labeling gets no credit for a cluster its
    fitted rows do not support.

    Parameters
    ----------
    Z_fit : ndarray of shape (n_fit, d)
        Reduced features of the rows the Gaussians are fitted on.
    labels_fit : ndarray of int of shape (n_fit,)
        The labeling's clusters of those rows (-1, noise, is one more cluster).
    Z_eval : ndarray of shape (n_eval, d)
        Reduced features of the evaluated rows.
    labels_eval : ndarray of int of shape (n_eval,)
        The same labeling's clusters of the evaluated rows.

    Returns
    -------
    ndarray of shape (n_eval,)
        Log-likelihood of each evaluated row.
    """
    Z_fit = np.asarray(Z_fit, dtype=np.float64)
    Z_eval = np.asarray(Z_eval, dtype=np.float64)
    labels_fit = np.asarray(labels_fit)
    labels_eval = np.asarray(labels_eval)
    n_fit = len(Z_fit)
    floor = _REG * max(float(Z_fit.var(axis=0).mean()), 1e-12)
    ids, counts = np.unique(labels_fit, return_counts=True)
    supported = ids[counts >= 2]
    keep = np.isin(labels_fit, supported)
    _, lab = np.unique(labels_fit[keep], return_inverse=True)
    gaussians = _cluster_gaussians(Z_fit[keep], lab, len(supported), floor)
    # Shares are of all fitted rows, not only of the supported clusters'.
    share_fix = np.log(keep.sum() / n_fit) if keep.any() else 0.0
    fallback = _cluster_gaussians(Z_fit, np.zeros(n_fit, dtype=int), 1, floor)[0]
    fallback = (*fallback[:3], float(np.log(1.0 / n_fit)))
    out = np.empty(len(Z_eval))
    index = {int(c): i for i, c in enumerate(supported)}
    for c in np.unique(labels_eval):
        members = labels_eval == c
        if int(c) in index:
            mu, inv, logdet, log_pi = gaussians[index[int(c)]]
            out[members] = _loglik_under(Z_eval[members], (mu, inv, logdet, log_pi + share_fix))
        else:
            out[members] = _loglik_under(Z_eval[members], fallback)
    return out


def labeling_score(X: np.ndarray, labels: np.ndarray, *, random_state: int = 0) -> float:
    """Classification BIC of a labeling per row (higher is better; comparable across k).

    This is the quantity the selection rule maximises (:mod:`clusterflow.cluster.selection`),
    including its switch: when the reduced space holds less than ``MIN_EXPLAINED`` of the
    variance of ``X`` (text embeddings), the score is the silhouette of the labeling instead
    (cosine when the rows lie on a sphere), as the rule then proposes by silhouette. The
    switch depends on ``X`` only, so two labelings of the same rows are always compared by
    the same measure.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Feature matrix (for the gate: the challenger's features of the held-out rows).
    labels : ndarray of int of shape (n_rows,)
        Cluster of each row; -1 (noise) counts as one more cluster.
    random_state : int, default=0
        Seed of the PCA reduction.

    Returns
    -------
    float
        ``(2 * log-likelihood - n_params * log(n)) / (2 * n)``: the mean log-likelihood of a row
        under its own cluster minus the BIC penalty per row (or the silhouette, see above;
        -1.0 for a labeling with one cluster or one row per cluster).
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    reducer = Reducer(X, random_state=random_state)
    if reducer.explained >= MIN_EXPLAINED:
        return score_reduced(reducer.transform(X), labels)
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return -1.0
    norms = np.linalg.norm(X, axis=1)
    on_sphere = norms.std() <= 0.05 * norms.mean()
    return float(silhouette_score(X, labels, metric="cosine" if on_sphere else "euclidean"))


def score_reduced(Z: np.ndarray, labels: np.ndarray) -> float:
    """:func:`labeling_score` on already reduced features (what the sweep uses)."""
    loglik, params = labeling_loglik(Z, np.asarray(labels))
    n = len(Z)
    return float((2 * loglik.sum() - params * np.log(n)) / (2 * n))


def prediction_strength(reference: np.ndarray, other: np.ndarray) -> float:
    """Tibshirani and Walther's prediction strength of ``reference`` given ``other``.

    For each reference cluster, the share of its pairs of rows that ``other`` also puts
    together; the result is the smallest share (the worst-reproduced cluster). Noise (-1) in
    ``reference`` is ignored. 1.0 means every cluster is reproduced whole.

    Parameters
    ----------
    reference, other : ndarray of int of shape (n_rows,)
        Two labelings of the same rows.

    Returns
    -------
    float
        Prediction strength in [0, 1].
    """
    keep = reference >= 0
    ref, oth = reference[keep], other[keep]
    if len(ref) == 0:
        return 0.0
    _, ref = np.unique(ref, return_inverse=True)
    _, oth = np.unique(oth, return_inverse=True)
    table = np.zeros((ref.max() + 1, oth.max() + 1))
    np.add.at(table, (ref, oth), 1.0)
    sizes = table.sum(axis=1)
    pairs = sizes * (sizes - 1) / 2
    together = (table * (table - 1) / 2).sum(axis=1)
    ok = pairs > 0
    return float((together[ok] / pairs[ok]).min()) if ok.any() else 0.0
