"""Cluster cards: what each cluster is, in words a reader can check.

Per cluster: size and share, its most distinctive terms (class-based TF-IDF over the texts of
the cluster, as in BERTopic's c-TF-IDF), the records nearest its centre, and how its tabular
columns differ from the whole table (numeric means in standard-deviation units, the most
over-represented category of each categorical column).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer

from clusterflow.errors import ConfigError

__all__ = ["cards_markdown", "cluster_cards"]


def _class_tfidf(texts: Sequence[str], labels: np.ndarray, clusters: np.ndarray, top: int) -> dict:
    """Top terms per cluster by class-based TF-IDF.

    Each cluster's texts form one document; the weight of term t in cluster c is
    ``tf(t, c) * log(1 + A / f(t))`` with ``tf`` the term's frequency in the cluster
    (normalised by the cluster's word count), ``A`` the mean word count per cluster and
    ``f(t)`` the term's frequency over all clusters.
    """
    docs = pd.Series(texts, dtype=object).fillna("").astype(str).to_numpy()
    try:
        vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][\w+#.-]+\b")
        counts = vec.fit_transform(docs)
    except ValueError:  # empty vocabulary: no usable words at all
        return {c: [] for c in clusters}
    vocab = vec.get_feature_names_out()
    per_class = np.vstack(
        [np.asarray(counts[labels == c].sum(axis=0)).ravel() for c in clusters]
    ).astype(np.float64)
    words = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(words, 1.0)
    avg_words = words.mean()
    idf = np.log1p(avg_words / np.maximum(per_class.sum(axis=0), 1.0))
    scores = tf * idf
    out = {}
    for i, c in enumerate(clusters):
        order = np.argsort(-scores[i], kind="stable")[:top]
        out[c] = [str(vocab[j]) for j in order if per_class[i, j] > 0]
    return out


def cluster_cards(
    table: pd.DataFrame,
    labels: Sequence[int] | np.ndarray,
    *,
    texts: Sequence[str] | None = None,
    features: np.ndarray | None = None,
    centers: np.ndarray | None = None,
    top_terms: int = 8,
    examples: int = 3,
) -> list[dict[str, Any]]:
    """Describe each cluster.

    Parameters
    ----------
    table : DataFrame
        The records (imputed or raw), one row per label.
    labels : array-like of int
        Cluster of each row; -1 (noise) gets its own card, listed last.
    texts : sequence of str, optional
        Free text of each row, for the distinctive terms.
    features : ndarray of shape (n_rows, d), optional
        Feature matrix, to find the records nearest each centre.
    centers : ndarray of shape (k, d), optional
        Cluster centres in feature space (row i is cluster i); by default the mean of the
        cluster's features.
    top_terms : int, default=8
        Distinctive terms per card.
    examples : int, default=3
        Representative records per card.

    Returns
    -------
    list of dict
        One card per cluster with keys ``cluster``, ``size``, ``share``, ``terms``,
        ``examples`` (list of records as dicts, nearest the centre first, or the first rows
        without features), ``numeric`` (column -> mean difference in std units, largest first)
        and ``categorical`` (column -> {value, share_in_cluster, share_overall, lift}).
    """
    labels = np.asarray(labels)
    n = len(table)
    if len(labels) != n:
        raise ConfigError(f"{len(labels)} labels for {n} rows", hint="pass one label per table row")
    if texts is not None and len(texts) != n:
        raise ConfigError(f"{len(texts)} texts for {n} rows", hint="pass one text per row")
    if features is not None and len(features) != n:
        raise ConfigError(
            f"features have {len(features)} rows, table has {n}",
            hint="pass the feature matrix of these rows",
        )
    clusters = np.unique(labels)
    clusters = np.concatenate([clusters[clusters >= 0], clusters[clusters < 0]])
    terms = _class_tfidf(texts, labels, clusters, top_terms) if texts is not None else {}

    numeric = table.select_dtypes(include="number")
    categorical = table.select_dtypes(exclude="number")
    num_mean, num_std = numeric.mean(), numeric.std(ddof=0).replace(0.0, np.nan)
    feats = None if features is None else np.asarray(features, dtype=np.float64)

    has_text = None
    if texts is not None:
        has_text = np.array([bool(pd.notna(t) and str(t).strip()) for t in texts], dtype=bool)
    cards: list[dict[str, Any]] = []
    for c in clusters:
        member = labels == c
        rows = np.flatnonzero(member)
        card: dict[str, Any] = {
            "cluster": int(c),
            "size": int(member.sum()),
            "share": float(member.mean()) if n else 0.0,
            "terms": terms.get(c, []),
        }
        # With texts, the representative records are those nearest the centre among the rows
        # that have text (a row without text says nothing a reader can look at).
        candidates = rows
        if has_text is not None and has_text[rows].any():
            candidates = rows[has_text[rows]]
        if feats is not None:
            if centers is not None and 0 <= c < len(centers):
                centre = np.asarray(centers[c], dtype=np.float64)
            else:
                centre = feats[member].mean(axis=0)
            dist = ((feats[candidates] - centre) ** 2).sum(axis=1)
            pick = candidates[np.argsort(dist, kind="stable")[:examples]]
        else:
            pick = candidates[:examples]
        card["examples"] = [
            {str(k): (None if pd.isna(v) else v) for k, v in table.iloc[i].items()} for i in pick
        ]
        if texts is not None:
            card["example_texts"] = [str(texts[i]) for i in pick]
        diffs = ((numeric[member].mean() - num_mean) / num_std).dropna()
        card["numeric"] = {
            str(k): round(float(v), 3)
            for k, v in diffs.reindex(diffs.abs().sort_values(ascending=False).index).items()
        }
        cats: dict[str, dict[str, Any]] = {}
        for col in categorical.columns:
            inside = categorical.loc[member, col].astype(str).value_counts(normalize=True)
            overall = categorical[col].astype(str).value_counts(normalize=True)
            if inside.empty or overall.nunique() == 0 or categorical[col].nunique() > 50:
                continue  # free-text or id-like columns say nothing as categories
            lift = (inside / overall.reindex(inside.index)).sort_values(ascending=False)
            value = lift.index[0]
            cats[str(col)] = {
                "value": str(value),
                "share_in_cluster": round(float(inside[value]), 3),
                "share_overall": round(float(overall[value]), 3),
                "lift": round(float(lift.iloc[0]), 3),
            }
        card["categorical"] = cats
        cards.append(card)
    return cards


def cards_markdown(cards: Sequence[dict[str, Any]]) -> str:
    """Render cluster cards as Markdown (one section per cluster).

    Parameters
    ----------
    cards : sequence of dict
        Output of :func:`cluster_cards`.

    Returns
    -------
    str
        The Markdown text.
    """
    lines: list[str] = []
    for card in cards:
        name = "noise" if card["cluster"] < 0 else f"cluster {card['cluster']}"
        lines.append(f"### {name}: {card['size']} rows ({card['share']:.1%})")
        lines.append("")
        if card.get("terms"):
            lines.append("**Terms:** " + ", ".join(card["terms"]))
            lines.append("")
        if card.get("numeric"):
            parts = [f"{k} {v:+.2f} sd" for k, v in list(card["numeric"].items())[:5]]
            lines.append("**Numeric vs all rows:** " + "; ".join(parts))
            lines.append("")
        if card.get("categorical"):
            parts = [
                f"{col} = {d['value']} ({d['share_in_cluster']:.0%} vs {d['share_overall']:.0%})"
                for col, d in card["categorical"].items()
            ]
            lines.append("**Over-represented:** " + "; ".join(parts))
            lines.append("")
        examples = card.get("example_texts") or [
            ", ".join(f"{k}={v}" for k, v in ex.items()) for ex in card.get("examples", [])
        ]
        if examples:
            lines.append("**Representative records:**")
            lines.extend(f"- {' '.join(str(e).split())[:200]}" for e in examples)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
