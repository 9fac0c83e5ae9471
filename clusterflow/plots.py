"""Figures of a sweep: metrics against k, and a 2-D map of the clusters (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from clusterflow.errors import ConfigError  # noqa: E402

__all__ = ["plot_cluster_map", "plot_sweep"]

_METRICS = (
    ("silhouette", "silhouette (higher is better)"),
    ("davies_bouldin", "Davies-Bouldin (lower is better)"),
    ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
    ("inertia", "within-cluster sum of squares"),
    ("bic", "BIC, Gaussian mixture (lower is better)"),
    ("stability", "stability, mean ARI on subsamples"),
)


def plot_sweep(results: pd.DataFrame, path: str | Path) -> Path:
    """Plot each metric of a sweep against k, one line per algorithm, the chosen point marked.

    Parameters
    ----------
    results : DataFrame
        ``ClusterSweep.results_`` (columns ``algorithm``, ``k``, ``selected`` and the metrics).
    path : str or Path
        Where to write the figure (format from the suffix, e.g. ``.png``).

    Returns
    -------
    Path
        The written file.
    """
    needed = {"algorithm", "k", "selected"}
    if not needed <= set(results.columns):
        raise ConfigError(
            f"results lack columns {sorted(needed - set(results.columns))}",
            hint="pass ClusterSweep.results_",
        )
    metrics = [(m, t) for m, t in _METRICS if m in results and results[m].notna().any()]
    n_cols = 3
    n_rows = max(1, int(np.ceil(len(metrics) / n_cols)))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)
    chosen = results[results["selected"].astype(bool)]
    # One colour per algorithm across all panels, so a line keeps its meaning.
    palette = plt.get_cmap("tab10")
    colours = {a: palette(i % 10) for i, a in enumerate(pd.unique(results["algorithm"]))}
    for ax, (metric, title) in zip(axes.ravel(), metrics, strict=False):
        for algorithm, rows in results.groupby("algorithm", sort=False):
            part = rows[rows[metric].notna() & (rows["k"] >= 1)]
            if part.empty:
                continue
            # HDBSCAN can reach the same k from several settings: show the median per k.
            best = part.groupby("k")[metric].median().sort_index()
            ax.plot(
                best.index,
                best.to_numpy(),
                marker=".",
                color=colours[algorithm],
                label=str(algorithm),
            )
        if not chosen.empty and pd.notna(chosen[metric].iloc[0]):
            ax.plot(
                chosen["k"].iloc[0],
                chosen[metric].iloc[0],
                marker="*",
                markersize=14,
                color="black",
                linestyle="none",
                label="chosen",
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("k")
    for ax in axes.ravel()[len(metrics) :]:
        ax.axis("off")
    if metrics:
        axes.ravel()[0].legend(fontsize=7)
    height = fig.get_figheight()  # inches: room for the tick labels and the titles
    return _save(
        fig,
        path,
        left=0.06,
        right=0.985,
        bottom=0.5 / height,
        top=1 - 0.3 / height,
        wspace=0.28,
        hspace=0.45,
    )


def plot_cluster_map(
    X: np.ndarray,
    labels: np.ndarray,
    path: str | Path,
    random_state: int = 0,
    max_points: int = 5000,
) -> Path:
    """Draw a 2-D PCA map of the rows coloured by cluster (noise, -1, in grey).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Feature matrix.
    labels : array-like of int of shape (n_rows,)
        Cluster of each row.
    path : str or Path
        Where to write the figure.
    random_state : int, default=0
        Seed of the sample drawn above ``max_points`` rows.
    max_points : int, default=5000
        Rows drawn at most.

    Returns
    -------
    Path
        The written file.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise ConfigError(
            f"X has shape {X.shape} and labels {labels.shape}; expected (n, d) and (n,)",
            hint="pass the feature matrix and one label per row",
        )
    idx = np.arange(len(X))
    if len(X) > max_points:
        rng = np.random.default_rng(random_state)
        idx = np.sort(rng.choice(len(X), max_points, replace=False))
    Xs, ls = X[idx], labels[idx]
    if Xs.shape[1] >= 2:
        xy = PCA(n_components=2, random_state=random_state).fit_transform(Xs)
    else:
        xy = np.column_stack([Xs[:, 0], np.zeros(len(Xs))])
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    noise = ls < 0
    if noise.any():
        ax.scatter(xy[noise, 0], xy[noise, 1], s=4, c="lightgrey", label="noise")
    clusters = np.unique(ls[~noise])
    cmap = plt.get_cmap("tab20" if len(clusters) > 10 else "tab10")
    for i, c in enumerate(clusters):
        m = ls == c
        ax.scatter(xy[m, 0], xy[m, 1], s=5, color=cmap(i % cmap.N), label=str(c))
    if len(clusters) <= 20:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_title(f"{len(clusters)} clusters, {len(Xs)} of {len(X)} rows (PCA)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return _save(fig, path, left=0.13, right=0.97, bottom=0.09, top=0.94)


def _save(fig: plt.Figure, path: str | Path, **margins: float) -> Path:
    """Set ``fig``'s margins, write it as a PNG at ``path`` (folders created) and close it.

    Fixed margins, not ``tight_layout``: measuring every tick label to lay the panels out took
    as long as drawing them (0.5 s of a sweep figure's 1.1 s, on every training).
    """
    fig.subplots_adjust(**margins)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
