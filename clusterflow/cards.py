"""Cluster cards: what each cluster is, in words a reader can check.

Per cluster: size and share, a short label, its most distinctive terms, the records nearest its
centre, and how its tabular columns differ from the whole table (numeric means in
standard-deviation units, the categories it holds clearly more often than the others do).

Distinctive terms are class-based TF-IDF (each cluster's texts as one document, as BERTopic's
c-TF-IDF) with two changes that make the cards tell clusters apart: words that most records use
anyway (the corpus-frequent words, beside the English stop words) are removed first, and a term
is kept only when the cluster uses it clearly more often than the rest of the data (its rate
inside over its rate outside, ``lift``), ranked by c-TF-IDF times ``log(lift)``. Without that,
the words every cluster shares (on the FAA strikes: damage, flt, bird, struck) led every card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer

from clusterflow.errors import ConfigError

__all__ = ["cards_markdown", "cluster_cards", "cluster_label"]

CORPUS_FREQUENT = 0.2
"""Words in more than this share of the records are corpus-frequent and never a cluster's term."""

MIN_LIFT = 1.5
"""A term or a category level is distinctive when the cluster has it this many times as often."""

MIN_SUPPORT = 3
"""...and when at least this many of the cluster's records have it (one record's lift is luck)."""

SMALL_CLUSTER = 0.01
"""Clusters under this share of the rows (or under ``MIN_SUPPORT`` rows) get a note."""


def _class_tfidf(texts: Sequence[str], labels: np.ndarray, clusters: np.ndarray, top: int) -> dict:
    """Distinctive terms per cluster: c-TF-IDF over the words that are not corpus-frequent.

    Each cluster's texts form one document; ``ctfidf(t, c) = tf(t, c) * log(1 + A / f(t))`` with
    ``tf`` the term's share of the cluster's words, ``A`` the mean word count per cluster and
    ``f(t)`` the term's count over all clusters. Words that more than ``CORPUS_FREQUENT`` of the
    records use in most clusters are dropped first. A term is kept for cluster ``c`` when at least
    ``MIN_SUPPORT`` of its records (fewer for a tiny cluster) use it and its rate in ``c`` is at
    least ``MIN_LIFT`` times its rate in the other records; terms are ranked by
    ``ctfidf * log(lift)``.
    """
    docs = pd.Series(texts, dtype=object).fillna("").astype(str).to_numpy()
    pattern = r"(?u)\b[a-zA-Z][\w+#.-]+\b"
    try:
        vec = CountVectorizer(stop_words="english", token_pattern=pattern, binary=False)
        counts = vec.fit_transform(docs).tocsc()
    except ValueError:  # empty vocabulary: no usable words at all
        return {c: [] for c in clusters}
    vocab = vec.get_feature_names_out()
    present = (counts > 0).astype(np.int64).tocsr()
    counts = counts.tocsr()
    per_class = np.vstack(
        [np.asarray(counts[labels == c].sum(axis=0)).ravel() for c in clusters]
    ).astype(np.float64)
    docs_with = np.vstack(
        [np.asarray(present[labels == c].sum(axis=0)).ravel() for c in clusters]
    ).astype(np.float64)
    # Corpus-frequent: used by more than CORPUS_FREQUENT of the records in most clusters.
    sizes = np.array([(labels == c).sum() for c in clusters], dtype=np.float64)[:, None]
    frequent = (docs_with / np.maximum(sizes, 1.0) > CORPUS_FREQUENT).sum(axis=0) > len(
        clusters
    ) / 2
    per_class[:, frequent] = 0.0
    words = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(words, 1.0)
    idf = np.log1p(words.mean() / np.maximum(per_class.sum(axis=0), 1.0))
    total = per_class.sum(axis=0)
    all_words = words.sum()
    out = {}
    for i, c in enumerate(clusters):
        rest_rate = (total - per_class[i] + 0.5) / max(all_words - words[i, 0], 1.0)
        lift = (per_class[i] / max(words[i, 0], 1.0)) / rest_rate
        size = int((labels == c).sum())
        support = min(MIN_SUPPORT, max(1, size // 2))
        keep = (docs_with[i] >= support) & (lift >= MIN_LIFT)
        keep &= per_class[i] > 0
        score = np.where(keep, tf[i] * idf * np.log(np.maximum(lift, 1.0)), -np.inf)
        order = np.argsort(-score, kind="stable")[:top]
        out[c] = [str(vocab[j]) for j in order if np.isfinite(score[j])]
    return out


def cluster_label(card: dict[str, Any], words: int = 3) -> str:
    """Return a short name for a cluster from what sets it apart.

    Its top distinctive terms when it has any; otherwise its most over-represented category
    levels and its numeric columns furthest from the overall mean (``bill_length_mm high``).
    """
    if card.get("terms"):
        return " / ".join(card["terms"][:words])
    parts = [f"{col}={d['value']}" for col, d in list(card.get("categorical", {}).items())[:2]]
    for col, diff in card.get("numeric", {}).items():
        if len(parts) >= words:
            break
        if abs(diff) >= 0.5:
            parts.append(f"{col} {'high' if diff > 0 else 'low'}")
    return ", ".join(parts) or "no distinctive trait"


def _check_lengths(
    n: int, labels: np.ndarray, texts: Sequence[str] | None, features: np.ndarray | None
) -> None:
    if len(labels) != n:
        raise ConfigError(f"{len(labels)} labels for {n} rows", hint="pass one label per table row")
    if texts is not None and len(texts) != n:
        raise ConfigError(f"{len(texts)} texts for {n} rows", hint="pass one text per row")
    if features is not None and len(features) != n:
        raise ConfigError(
            f"features have {len(features)} rows, table has {n}",
            hint="pass the feature matrix of these rows",
        )


def _examples(
    c: int,
    member: np.ndarray,
    has_text: np.ndarray | None,
    feats: np.ndarray | None,
    centers: np.ndarray | None,
    examples: int,
) -> np.ndarray:
    """Rows of cluster ``c`` nearest its centre (the first rows without features)."""
    # With texts, the representative records are those nearest the centre among the rows
    # that have text (a row without text says nothing a reader can look at).
    rows = np.flatnonzero(member)
    candidates = rows
    if has_text is not None and has_text[rows].any():
        candidates = rows[has_text[rows]]
    if feats is None:
        return candidates[:examples]
    if centers is not None and 0 <= c < len(centers):
        centre = np.asarray(centers[c], dtype=np.float64)
    else:
        centre = feats[member].mean(axis=0)
    dist = ((feats[candidates] - centre) ** 2).sum(axis=1)
    return candidates[np.argsort(dist, kind="stable")[:examples]]


def _over_represented(
    categorical: pd.DataFrame, member: np.ndarray, min_support: int
) -> dict[str, dict[str, Any]]:
    """Per column, the level the cluster holds clearly more often than the other rows."""
    n = len(categorical)
    cats: dict[str, dict[str, Any]] = {}
    for col in categorical.columns:
        if categorical[col].nunique() > 50:
            continue  # free-text or id-like columns say nothing as categories
        values = categorical[col]
        inside_counts = values[member].dropna().astype(str).value_counts()
        inside = inside_counts / max(int(member.sum()), 1)
        overall = values.dropna().astype(str).value_counts() / max(n, 1)
        if inside.empty:
            continue
        lift = (inside / overall.reindex(inside.index)).sort_values(ascending=False)
        real = lift[(lift >= MIN_LIFT) & (inside_counts.reindex(lift.index) >= min_support)]
        if real.empty:
            continue  # no level the cluster holds clearly more often than the others
        value = real.index[0]
        cats[str(col)] = {
            "value": str(value),
            "share_in_cluster": round(float(inside[value]), 3),
            "share_overall": round(float(overall[value]), 3),
            "lift": round(float(real.iloc[0]), 3),
            "count": int(inside_counts[value]),
        }
    return cats


@dataclass(frozen=True)
class _Sources:
    """What every card is drawn from: the table, its texts and features, and overall figures.

    Attributes
    ----------
    table : DataFrame
        The records, one row per label.
    texts : sequence of str or None
        Free text of each row.
    has_text : ndarray of bool or None
        Rows whose text is not blank (``None`` without texts).
    features : ndarray of float64 or None
        Feature matrix of the rows.
    centers : ndarray or None
        Cluster centres in feature space.
    numeric, categorical : DataFrame
        The table's numeric columns and its other columns.
    numeric_mean, numeric_std : Series
        Mean and standard deviation (NaN where 0) of each numeric column over all rows.
    """

    table: pd.DataFrame
    texts: Sequence[str] | None
    has_text: np.ndarray | None
    features: np.ndarray | None
    centers: np.ndarray | None
    numeric: pd.DataFrame
    categorical: pd.DataFrame
    numeric_mean: pd.Series
    numeric_std: pd.Series

    @classmethod
    def of(
        cls,
        table: pd.DataFrame,
        texts: Sequence[str] | None,
        features: np.ndarray | None,
        centers: np.ndarray | None,
    ) -> _Sources:
        """Split the table into numeric and categorical columns and measure the whole table."""
        numeric = table.select_dtypes(include="number")
        has_text = None
        if texts is not None:
            has_text = np.array([bool(pd.notna(t) and str(t).strip()) for t in texts], dtype=bool)
        return cls(
            table=table,
            texts=texts,
            has_text=has_text,
            features=None if features is None else np.asarray(features, dtype=np.float64),
            centers=centers,
            numeric=numeric,
            categorical=table.select_dtypes(exclude="number"),
            numeric_mean=numeric.mean(),
            numeric_std=numeric.std(ddof=0).replace(0.0, np.nan),
        )


def _card(
    c: int, labels: np.ndarray, src: _Sources, terms: list[str], examples: int, min_support: int
) -> dict[str, Any]:
    """Describe cluster ``c``.

    Parameters
    ----------
    c : int
        The cluster (-1 is noise).
    labels : ndarray of int
        Cluster of each row.
    src : _Sources
        The table and the figures every card is measured against.
    terms : list of str
        The cluster's distinctive terms.
    examples : int
        Representative records on the card.
    min_support : int
        Records a category level needs to be listed as over-represented.

    Returns
    -------
    dict
        The card (see :func:`cluster_cards` for its keys).
    """
    member = labels == c
    card: dict[str, Any] = {
        "cluster": int(c),
        "size": int(member.sum()),
        "share": float(member.mean()) if len(src.table) else 0.0,
        "terms": terms,
    }
    pick = _examples(int(c), member, src.has_text, src.features, src.centers, examples)
    card["examples"] = [
        {str(k): (None if pd.isna(v) else v) for k, v in src.table.iloc[i].items()} for i in pick
    ]
    if src.texts is not None:
        card["example_texts"] = [str(src.texts[i]) for i in pick]
    diffs = ((src.numeric[member].mean() - src.numeric_mean) / src.numeric_std).dropna()
    card["numeric"] = {
        str(k): round(float(v), 3)
        for k, v in diffs.reindex(diffs.abs().sort_values(ascending=False).index).items()
    }
    cats = _over_represented(src.categorical, member, min_support)
    card["categorical"] = dict(sorted(cats.items(), key=lambda item: -item[1]["lift"]))
    card["label"] = "noise" if c < 0 else cluster_label(card)
    if c >= 0 and (card["size"] < MIN_SUPPORT or card["share"] < SMALL_CLUSTER):
        card["note"] = (
            f"too small to matter: {card['size']} rows ({card['share']:.1%}); "
            "likely outliers split off, not a group"
        )
    return card


def cluster_cards(
    table: pd.DataFrame,
    labels: Sequence[int] | np.ndarray,
    *,
    texts: Sequence[str] | None = None,
    features: np.ndarray | None = None,
    centers: np.ndarray | None = None,
    top_terms: int = 8,
    examples: int = 3,
    min_support: int = MIN_SUPPORT,
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
    min_support : int, default=MIN_SUPPORT
        Records of the cluster a category level needs to be listed as over-represented.

    Returns
    -------
    list of dict
        One card per cluster with keys ``cluster``, ``size``, ``share``, ``terms``,
        ``examples`` (list of records as dicts, nearest the centre first, or the first rows
        without features), ``numeric`` (column -> mean difference in std units, largest first),
        ``categorical`` (column -> {value, share_in_cluster, share_overall, lift, count}, only
        levels with lift >= ``MIN_LIFT`` held by at least ``min_support`` records), ``label``
        (see :func:`cluster_label`) and ``note`` (set for clusters too small to matter).
    """
    labels = np.asarray(labels)
    _check_lengths(len(table), labels, texts, features)
    clusters = np.unique(labels)
    clusters = np.concatenate([clusters[clusters >= 0], clusters[clusters < 0]])
    terms = _class_tfidf(texts, labels, clusters, top_terms) if texts is not None else {}
    src = _Sources.of(table, texts, features, centers)
    return [_card(c, labels, src, terms.get(c, []), examples, min_support) for c in clusters]


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
        label = f" - {card['label']}" if card.get("label") and card["cluster"] >= 0 else ""
        lines.append(f"### {name}: {card['size']} rows ({card['share']:.1%}){label}")
        lines.append("")
        if card.get("note"):
            lines.append(f"_Note: {card['note']}._")
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
                f"{col} = {d['value']} ({d['share_in_cluster']:.0%} vs {d['share_overall']:.0%}, "
                f"x{d['lift']:.1f})"
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
