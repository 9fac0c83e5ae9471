"""Run the sweep and the reference clusterings on one data set; cache everything on disk.

Per data set this computes, once (cached under ``~/.cache/clusterflow-bench/quality/``):

- the feature matrices: ``new`` (clusterflow's FeatureBuilder defaults), ``today`` (no tail
  transform, categorical weight 0.2: the builder before issue 11), ``plain`` (the references'
  features: MiniLM vectors, standardised numerics with heavy tails log-scaled, one-hot
  categoricals, each block at equal total variance);
- the full candidate table of ``ClusterSweep`` on ``new`` and on ``today``, with the ARI and NMI
  of every candidate against the labels (so selection rules are evaluated offline, the same
  candidates for every rule);
- the references on ``plain``: KMeans told the true k, the silhouette-max KMeans sweep, HDBSCAN;
- KMeans told the true k under alternative block weights (for the weight constants' LODO).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from benchmarks.quality.datasets import Dataset
from clusterflow.cluster.evidence import Reducer
from clusterflow.features import SKEW_THRESHOLD, FeatureBuilder
from clusterflow.sweep import ClusterSweep, default_k_max, k_grid

CACHE = Path(os.environ.get("CLUSTERFLOW_BENCH_CACHE", Path.home() / ".cache/clusterflow-bench"))
VERSION = "v5"
WEIGHTS_VERSION = "w2"
# Starts per Gaussian mixture fit in the sweeps (CLUSTERFLOW_BENCH_GMM_N_INIT overrides the
# sweep's default, to compare). The v5 / w2 tables were computed with one start: other
# values get their own cache tag.
GMM_N_INIT = int(os.environ.get("CLUSTERFLOW_BENCH_GMM_N_INIT", ClusterSweep().gmm_n_init))
GMM_TAG = "" if GMM_N_INIT == 1 else f"-gmm{GMM_N_INIT}"
# Subsample refits per candidate (stability and prediction strength); counts other than 3 (the
# default before six, whose caches carry no tag) get their own cache tag.
RESAMPLES = int(os.environ.get("CLUSTERFLOW_BENCH_RESAMPLES", ClusterSweep().stability_resamples))
# The imputer's version, in the key of every cache built on an imputed table; bump it when the
# imputer's results change. Before the key held it, a KNN-era imputation of birds outlived three
# imputer changes. i2: the forest's two rounds on 60% of the columns, fills clipped to the range
# seen in fit; i3: the clip on numerics only.
IMPUTER_TAG = "-i3"
WEIGHT_GRID: dict[str, list] = {
    "categorical_weight": [0.2, 0.5, 1.0],
    "text_share": ["block", 0.25, 0.5, 0.75],
}
TAIL_GRID = [1.0, 2.0, 4.0]


class RecordingSweep(ClusterSweep):
    """A ClusterSweep that keeps every candidate model (for the per-candidate ARI).

    It fits every family on every set, the mixtures too where the silhouette proposes and the
    sweep itself skips them: the rule's variants (``min_explained``, ``silhouette_from``) are
    judged on the whole candidate table.
    """

    def _deferred(self, families: list, explained: float) -> list:  # noqa: D102
        return []

    def _select(self, results: pd.DataFrame, models: list) -> None:  # noqa: D102
        self.candidates_ = list(models)
        super()._select(results, models)


def scores(labels: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """ARI and NMI; noise (-1) counts as one more cluster."""
    return (
        float(adjusted_rand_score(labels, pred)),
        float(normalized_mutual_info_score(labels, pred)),
    )


def embeddings(ds: Dataset) -> np.ndarray | None:
    if ds.text is None:
        return None
    from clusterflow.embed import MiniLMEmbedder, embed_column

    CACHE.mkdir(parents=True, exist_ok=True)
    embedder = MiniLMEmbedder(cache_path=CACHE / "embeddings.sqlite", precision="fp32")
    vectors, _ = embed_column(embedder, ds.table[ds.text].tolist())
    return vectors


def _has_gaps(ds: Dataset) -> bool:
    cols = ds.numeric + ds.categorical
    return bool(cols) and bool(ds.table[cols].isna().any().any())


def imputer_tag(ds: Dataset) -> str:
    """The imputer's version when the set has gaps ("" without: no imputation to key)."""
    return IMPUTER_TAG if _has_gaps(ds) else ""


def tag(ds: Dataset, resamples: int = RESAMPLES) -> str:
    """Cache tag of a set's sweeps: mixtures' starts, refits, and the imputer when it has gaps."""
    return GMM_TAG + ("" if resamples == 3 else f"-r{resamples}") + imputer_tag(ds)


def imputed(ds: Dataset) -> pd.DataFrame:
    """The table with its gaps filled as training would (cached: the choice costs a fit each)."""
    cols = ds.numeric + ds.categorical
    if not _has_gaps(ds):
        return ds.table
    digest = hashlib.sha1(
        pd.util.hash_pandas_object(ds.table[cols]).to_numpy(), usedforsecurity=False
    ).hexdigest()
    path = CACHE / "quality" / f"imputed{IMPUTER_TAG}-{ds.name}-{digest[:10]}.pkl"
    if path.exists():
        return pd.read_pickle(path)
    from clusterflow.impute import TableImputer

    imp = TableImputer(numeric_columns=ds.numeric, categorical_columns=ds.categorical)
    table = imp.fit_transform(ds.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_pickle(path)
    return table


def features(ds: Dataset, table: pd.DataFrame, emb: np.ndarray | None, **kw: object) -> np.ndarray:
    builder = FeatureBuilder(numeric_columns=ds.numeric, categorical_columns=ds.categorical, **kw)
    return builder.fit_transform(table, embeddings=emb)


def plain_kwargs(
    ds: Dataset, text_share: float | str = "block", categorical_weight: float = 1.0
) -> dict:
    """Block weights: numeric 1, categoricals ``categorical_weight``, text by ``text_share``.

    ``text_share="block"`` gives the text block weight 1 like the numeric block (the builder's
    default; with ``categorical_weight=1`` every block has equal total variance, the issue's
    reference features); a number gives text that share of the total variance.
    """
    kw: dict = {"tails": "auto", "numeric_weight": 1.0, "categorical_weight": categorical_weight}
    if ds.text is not None:
        tabular = (1.0 if ds.numeric else 0.0) + (categorical_weight if ds.categorical else 0.0)
        share = 0.5 if text_share == "block" else float(text_share)
        if text_share == "block" or not tabular:
            kw["text_weight"] = 1.0
        else:
            kw["text_weight"] = share / (1 - share) * tabular
    return kw


def candidate_table(
    X: np.ndarray, labels: np.ndarray, seed: int = 0, k_max: int | None = None
) -> tuple[pd.DataFrame, float, np.ndarray]:
    """The sweep's candidate table with ARI/NMI per candidate, its runtime and all labelings."""
    t0 = time.perf_counter()
    sweep = RecordingSweep(
        random_state=seed, k_max=k_max, gmm_n_init=GMM_N_INIT, stability_resamples=RESAMPLES
    ).fit(X)
    seconds = time.perf_counter() - t0
    Xw = sweep._working(X)
    table = sweep.results_.copy()
    aris, nmis, preds = [], [], []
    for model in sweep.candidates_:
        try:
            pred = model.predict(Xw)
            a, m = scores(labels, pred)
        except Exception:  # a degenerate candidate (no centres) has no labeling
            pred = np.full(len(X), -2)
            a, m = float("nan"), float("nan")
        aris.append(a)
        nmis.append(m)
        preds.append(pred.astype(np.int16))
    table["ari"] = aris
    table["nmi"] = nmis
    table["k_max"] = sweep.k_max_
    table["metric"] = sweep.metric_
    return table, seconds, np.vstack(preds)


def references(X: np.ndarray, labels: np.ndarray, metric: str, true_k: int) -> dict:
    out: dict = {}
    t0 = time.perf_counter()
    pred = KMeans(n_clusters=true_k, n_init=4, random_state=0).fit_predict(X)
    out["true_k"] = {"k": true_k, "ari": scores(labels, pred)[0], "nmi": scores(labels, pred)[1]}
    rng = np.random.default_rng(0)
    idx = rng.choice(len(X), min(len(X), 2000), replace=False)
    best = (-2.0, None, None)
    for k in k_grid(2, min(default_k_max(len(X)), len(X) - 1)):
        pred = KMeans(n_clusters=k, n_init=2, random_state=0).fit_predict(X)
        sil = silhouette_score(X[idx], pred[idx], metric=metric)
        if sil > best[0]:
            best = (sil, k, pred)
    a, m = scores(labels, best[2])
    out["silmax"] = {"k": best[1], "ari": a, "nmi": m, "silhouette": float(best[0])}
    import hdbscan
    from sklearn.decomposition import PCA

    Z = PCA(n_components=min(16, X.shape[1]), random_state=0).fit_transform(X)
    pred = hdbscan.HDBSCAN(min_cluster_size=max(5, len(X) // 100), min_samples=5).fit_predict(Z)
    a, m = scores(labels, pred)
    out["hdbscan"] = {
        "k": int(len(set(pred[pred >= 0]))),
        "ari": a,
        "nmi": m,
        "noise": float((pred < 0).mean()),
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def _skewed(ds: Dataset, table: pd.DataFrame) -> bool:
    return bool(ds.numeric) and any(
        abs(float(table[c].astype(float).skew())) > min(TAIL_GRID) for c in ds.numeric
    )


def weight_grid(ds: Dataset) -> list[tuple[float, str, str]]:
    """Every (categorical weight, text share, tails) a set can inform (other values fixed)."""
    cws = WEIGHT_GRID["categorical_weight"] if ds.categorical else [1.0]
    mixed = ds.text is not None and (ds.numeric or ds.categorical)
    tss = WEIGHT_GRID["text_share"] if mixed else ["block"]
    tails = [str(SKEW_THRESHOLD)]
    if _skewed(ds, imputed(ds)):
        tails = ["none", *[str(t) for t in TAIL_GRID]]
    return [(cw, str(ts), t) for cw in cws for ts in tss for t in tails]


def _variant_features(
    ds: Dataset, table: pd.DataFrame, emb: np.ndarray | None, cw: float, ts: str, tails: str
) -> np.ndarray:
    kw = plain_kwargs(ds, ts if ts == "block" else float(ts), cw)
    kw |= {"tails": "none"} if tails == "none" else {"skew_threshold": float(tails)}
    return features(ds, table, emb, **kw)


def weight_variants(ds: Dataset) -> dict:
    """ARI of KMeans told the true k under each block weighting and tail rule (cached).

    Keys read ``cw=<categorical weight>|ts=<text share or block>|tails=<none or skew
    threshold>``; only the constants a set can inform vary (no categorical block: cw stays 1.0,
    and so on).
    """
    path = CACHE / "quality" / f"weights-{WEIGHTS_VERSION}{imputer_tag(ds)}-{ds.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    table, emb = imputed(ds), embeddings(ds)
    out: dict = {}
    for cw, ts, tails in weight_grid(ds):
        X = _variant_features(ds, table, emb, cw, ts, tails)
        pred = KMeans(n_clusters=ds.true_k, n_init=4, random_state=0).fit_predict(X)
        out[f"cw={cw}|ts={ts}|tails={tails}"] = scores(ds.labels, pred)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def rule_variants(ds: Dataset, new: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The sweep's candidate tables (with ARI) under other block weights (cached per variant).

    A sweep per variant is the expensive part of the benchmark, so only one constant moves at a
    time: the categorical weight (text at ``block``, the builder's default), and the text share
    with categoricals at weight 1 (every tabular block equal). The builder's defaults give the
    ``new`` table, which is reused.
    """
    folder = CACHE / "quality" / f"rule-{WEIGHTS_VERSION}{tag(ds)}-{ds.name}"
    folder.mkdir(parents=True, exist_ok=True)
    tails = str(SKEW_THRESHOLD)
    wanted = []
    if ds.categorical:
        wanted += [(cw, "block") for cw in WEIGHT_GRID["categorical_weight"]]
    if ds.text is not None and (ds.numeric or ds.categorical):
        wanted += [(1.0, "block")] + [(1.0, str(ts)) for ts in WEIGHT_GRID["text_share"]]
    out: dict[str, pd.DataFrame] = {}
    if not wanted:
        return out
    table, emb = imputed(ds), embeddings(ds)
    X_new = features(ds, table, emb)
    for cw, ts in dict.fromkeys(wanted):
        key = f"cw={cw}|ts={ts}|tails={tails}"
        X = _variant_features(ds, table, emb, cw, ts, tails)
        if np.array_equal(X, X_new):  # the builder's defaults (or the same matrix)
            out[key] = new
            continue
        path = folder / f"{key.replace('|', '_').replace('=', '-')}.csv"
        if not path.exists():
            cand, seconds, _ = candidate_table(X, ds.labels)
            cand["seconds"] = seconds
            cand.to_csv(path, index=False)
        out[key] = pd.read_csv(path)
    return out


def evidence_share(X: np.ndarray) -> float:
    """Share of the variance the sweep's reduced space holds (as the sweep computes it)."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1)
    nz = norms[norms > 1e-12]
    if len(nz) and nz.std() <= 0.05 * nz.mean():  # the sweep's "auto" metric: cosine
        X = X / np.where(norms > 1e-12, norms, 1.0)[:, None]
    return Reducer(X, random_state=0).explained


def folder_of(ds: Dataset, resamples: int = RESAMPLES) -> Path:
    """The cache folder of one data set (by name, shape, VERSION and tag)."""
    key = f"{VERSION}{tag(ds, resamples)}|{ds.name}|{ds.table.shape}|{list(ds.table.columns)}"
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:10]
    return CACHE / "quality" / f"{ds.name}-{digest}"


def collect(ds: Dataset) -> dict:
    """Everything the tables need for one data set (cached by name, shape and VERSION)."""
    folder = folder_of(ds)
    if (folder / "meta.json").exists():
        meta = json.loads((folder / "meta.json").read_text())
        meta["new"] = pd.read_csv(folder / "new.csv")
        meta["today"] = pd.read_csv(folder / "today.csv")
        if "evidence_share" not in meta["new"]:  # tables cached before the column existed
            meta["new"]["evidence_share"] = evidence_share(np.load(folder / "X_new.npy"))
        return meta
    folder.mkdir(parents=True, exist_ok=True)
    emb = embeddings(ds)
    table = imputed(ds)
    X_new = features(ds, table, emb)
    X_today = features(ds, table, emb, tails="none", categorical_weight=0.2)
    X_plain = features(ds, table, emb, **plain_kwargs(ds))
    new, sec_new, labels_new = candidate_table(X_new, ds.labels)
    if np.array_equal(X_new, X_today):  # text only, or no skewed/categorical column: same sweep
        today, sec_today = new.copy(), sec_new
    else:
        today, sec_today, _ = candidate_table(X_today, ds.labels)
    np.save(folder / "labels_new.npy", labels_new)
    np.save(folder / "X_new.npy", X_new)
    metric = str(new["metric"].iloc[0])
    meta = {
        "name": ds.name,
        "shape": ds.shape,
        "rows": len(ds.table),
        "true_k": ds.true_k,
        "seconds_new": sec_new,
        "seconds_today": sec_today,
        "refs": references(X_plain, ds.labels, metric, ds.true_k),
    }
    new.to_csv(folder / "new.csv", index=False)
    today.to_csv(folder / "today.csv", index=False)
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    meta["new"], meta["today"] = new, today
    return meta
