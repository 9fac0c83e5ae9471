"""Human reports of a :class:`~clusterflow.drift.DriftResult`: one HTML page, one short Markdown.

The HTML page is self-contained (inline CSS, bars as CSS widths, no script, no external asset) so
it can be attached to a run, mailed or opened from disk. Every string that comes from the data
(column names, categories, reasons, titles) is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from clusterflow.drift import (
    ClusterMixDrift,
    ColumnDrift,
    DriftResult,
    EmbeddingDrift,
    NoveltyDrift,
    NumericColumnDrift,
    column_effect,
    format_number,
)

__all__ = ["render_html", "render_markdown"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.sub{color:#59636e;margin-top:0}
.banner{padding:1rem 1.25rem;border-radius:8px;font-size:1.2rem;font-weight:600;margin:1rem 0}
.drift{background:#ffebe9;border:1px solid #cf222e;color:#82071e}
.ok{background:#dafbe1;border:1px solid #1a7f37;color:#0f5323}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fff5f5}
.tag{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.8rem;font-weight:600}
.tag.yes{background:#cf222e;color:#fff}.tag.no{background:#eaeef2;color:#59636e}
.bar{height:.6rem;border-radius:2px;margin:.1rem 0}
.bar.ref{background:#8c959f}.bar.new{background:#0969da}
.legend span{display:inline-block;width:.8rem;height:.6rem;margin:0 .3rem 0 1rem}
dl{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}dt{color:#59636e}
dd{margin:0}
"""


def render_html(
    result: DriftResult,
    *,
    title: str = "clusterflow drift report",
    reference_name: str = "",
    batch_name: str = "",
    rows: dict[str, Any] | None = None,
) -> str:
    """Render a drift result as one self-contained HTML page.

    Parameters
    ----------
    result : DriftResult
        What :func:`clusterflow.drift.compare` found.
    title : str, default="clusterflow drift report"
        Page title and heading.
    reference_name, batch_name : str, optional
        What the two sides are (a model URI, a file name), shown under the title.
    rows : dict, optional
        The batch's row accounting (``MonitorOutcome.rows()``: ``in``, ``compared``,
        ``quarantined``, ``reference``, ``top_quarantine_reasons``), shown under the banner.

    Returns
    -------
    str
        The HTML document: verdict banner, rows, reasons, per-column table (drifted first, then by
        effect), embedding, cluster proportions (reference vs batch bars) and novelty sections.
    """
    sub = ""
    if reference_name or batch_name:
        sub = (
            f'<p class="sub">reference: <b>{escape(reference_name or "-")}</b> &middot; '
            f"batch: <b>{escape(batch_name or '-')}</b></p>"
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        sub,
        _banner(result, rows),
        _rows_html(rows),
        _reasons_html(result),
        _columns_html(result),
        _embedding_html(result.embedding),
        _clusters_html(result.clusters),
        _novelty_html(result.novelty),
        _thresholds_html(result.thresholds),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def render_markdown(result: DriftResult, *, rows: dict[str, Any] | None = None) -> str:
    """Render a short Markdown summary of a drift result (for a Prefect markdown artifact).

    Parameters
    ----------
    result : DriftResult
        What :func:`clusterflow.drift.compare` found.
    rows : dict, optional
        The batch's row accounting (see :func:`render_html`).

    Returns
    -------
    str
        Verdict, reasons, and a table of the drifted columns (or the five largest effects).
    """
    n_cols = len(result.columns)
    drifted = result.drifted_columns
    verdict = "**Drift detected**" if result.drift_detected else "**No drift detected**"
    lines = [f"# {verdict}", ""]
    lines.append(
        f"{len(drifted)} of {n_cols} columns drifted; "
        f"text: {_md_flag(result.embedding)}; cluster mix: {_md_flag(result.clusters)}; "
        f"novelty: {_md_flag(result.novelty)}."
    )
    if rows:
        lines += ["", _rows_sentence(rows)]
    if result.reasons:
        lines += ["", *[f"- {_md_escape(r)}" for r in result.reasons]]
    shown = drifted or _by_effect(result.columns)[:5]
    if shown:
        lines += [
            "",
            "| column | kind | effect | Holm p | drifted |",
            "|---|---|---:|---:|---|",
        ]
        for col in shown:
            info = result.columns[col]
            lines.append(
                f"| {_md_escape(col)} | {info.kind} | {_effect(info.effect)} "
                f"({info.effect_name}) | {_p(info.p_value_adjusted)} | "
                f"{'yes' if info.drifted else 'no'} |"
            )
    emb = result.embedding
    if emb.auc is not None:
        lines += [
            "",
            f"Text domain classifier ROC AUC: {emb.auc:.3f} (threshold {emb.threshold:.2f}).",
        ]
    cl = result.clusters
    lines.append(f"Cluster mix PSI: {cl.psi:.3f} (threshold {cl.threshold:.2f}).")
    return "\n".join(lines) + "\n"


# --- sections -------------------------------------------------------------------------------


def _banner(result: DriftResult, rows: dict[str, Any] | None = None) -> str:
    drifted = result.drifted_columns
    views = [
        name
        for name, view in (
            ("text", result.embedding),
            ("cluster mix", result.clusters),
            ("novelty", result.novelty),
        )
        if view.drifted
    ]
    if (rows or {}).get("quarantine_drifted"):
        views.append("rows failing validation")
    detail = f"{len(drifted)} of {len(result.columns)} columns drifted"
    if views:
        detail += "; also " + ", ".join(views)
    cls, word = ("drift", "Drift detected") if result.drift_detected else ("ok", "No drift")
    return f'<div class="banner {cls}">{word} &mdash; {escape(detail)}</div>'


def _rows_sentence(rows: dict[str, Any]) -> str:
    text = (
        f"Batch: {rows['in']} rows, {rows['compared']} compared, {rows['quarantined']} "
        f"quarantined ({rows['quarantined_share']:.1%}); reference: {rows['reference']} rows."
    )
    reasons = rows.get("top_quarantine_reasons") or []
    if reasons:
        text += " Most common quarantine reasons: " + "; ".join(
            f"{_md_escape(r['reason'])} ({r['rows']} rows{_md_escape(_example(r))})"
            for r in reasons[:3]
        )
    return text


def _rows_html(rows: dict[str, Any] | None) -> str:
    if not rows:
        return ""
    reasons = rows.get("top_quarantine_reasons") or []
    items = "".join(
        f"<li>{escape(r['reason'])} ({r['rows']} rows{escape(_example(r))})</li>" for r in reasons
    )
    return (
        "<h2>Rows</h2><dl>"
        f"<dt>batch rows</dt><dd>{rows['in']}</dd>"
        f"<dt>compared</dt><dd>{rows['compared']}</dd>"
        f"<dt>quarantined (failed the champion's schema, not compared; see quarantine.csv)</dt>"
        f"<dd>{rows['quarantined']} ({rows['quarantined_share']:.1%})</dd>"
        f"{_training_share_html(rows)}"
        f"<dt>reference rows (the champion's training sample)</dt><dd>{rows['reference']}</dd>"
        "</dl>" + (f"<p>Most common quarantine reasons:</p><ul>{items}</ul>" if items else "")
    )


def _example(reason: dict[str, Any]) -> str:
    """Return ``", e.g. '3450 g'"`` for a grouped quarantine reason with an example value."""
    example = reason.get("example")
    return f", e.g. {example}" if example else ""


def _training_share_html(rows: dict[str, Any]) -> str:
    """Return the training file's share of failing rows and the test against it, as HTML."""
    share = rows.get("training_quarantined_share")
    if share is None:
        return "<dt>training rows that failed validation</dt><dd>not recorded</dd>"
    p = rows.get("quarantine_p_value")
    verdict = "a rise: drift" if rows.get("quarantine_drifted") else "no significant rise"
    return (
        f"<dt>training rows that failed validation</dt><dd>{share:.1%} "
        f"(binomial p {_p(p)}; {verdict})</dd>"
    )


def _reasons_html(result: DriftResult) -> str:
    if not result.reasons:
        return "<h2>Reasons</h2><p>Nothing moved beyond the thresholds.</p>"
    items = "".join(f"<li>{escape(r)}</li>" for r in result.reasons)
    return f"<h2>Reasons</h2><ul>{items}</ul>"


def _columns_html(result: DriftResult) -> str:
    if not result.columns:
        return ""
    rows = []
    for col in _by_effect(result.columns):
        info = result.columns[col]
        rows.append(
            f'<tr class="{"drifted" if info.drifted else ""}">'
            f"<td>{escape(col)}</td><td>{escape(info.kind)}</td>"
            f"<td>{escape(info.test)}</td>"
            f'<td class="num">{_effect(info.effect)}</td><td>{escape(info.effect_name)}</td>'
            f'<td class="num">{_p(info.p_value)}</td>'
            f'<td class="num">{_p(info.p_value_adjusted)}</td>'
            f"<td>{_missing_html(info)}</td>"
            f"<td>{_tag(info.drifted)}</td><td>{_column_summary(info)}</td></tr>"
        )
    head = (
        "<tr><th>column</th><th>kind</th><th>test</th><th>effect</th><th></th><th>p</th>"
        "<th>Holm p</th><th>blank cells: training &rarr; batch</th><th>drifted</th>"
        "<th>reference &rarr; batch (gaps filled)</th></tr>"
    )
    return (
        "<h2>Columns</h2><p>Drifted columns first, then by effect size.</p>"
        f"<table>{head}{''.join(rows)}</table>"
    )


def _missing_html(info: ColumnDrift) -> str:
    """Return the column's blank share, training against batch, and its test (Holm p)."""
    m = info.missing
    if m is None:
        return "-"
    trained = "not recorded" if m.reference_share is None else f"{m.reference_share:.1%}"
    text = f"{trained} &rarr; {m.batch_share:.1%} ({m.batch_missing} cells)"
    if m.p_value_adjusted is not None:
        text += f"; binomial Holm p {_p(m.p_value_adjusted)}"
    return text + (" " + _tag(True) if m.drifted else "")


def _column_summary(info: ColumnDrift) -> str:
    if info.note:
        return escape(info.note)
    if isinstance(info, NumericColumnDrift):
        r, b = info.reference, info.batch
        return escape(
            f"mean {_n(r.mean)} → {_n(b.mean)}; median {_n(r.median)} → "
            f"{_n(b.median)}; p05-p95 {_n(r.p05)}-{_n(r.p95)} → "
            f"{_n(b.p05)}-{_n(b.p95)}"
        )
    moves = "; ".join(f"{m.category} {m.reference:.1%} → {m.batch:.1%}" for m in info.top_moves[:3])
    text = escape(moves)
    if info.new_categories:
        text += "<br>new: " + escape(", ".join(info.new_categories[:5]))
    return text


def _embedding_html(view: EmbeddingDrift) -> str:
    if view.auc is None:
        note = _or(view.note, "not tested")
        return f"<h2>Text embeddings</h2><p>{escape(str(note))}.</p>"
    return (
        "<h2>Text embeddings</h2>"
        "<p>A logistic regression tries to tell batch rows from reference rows by their "
        "embeddings (balanced samples, stratified cross-validation). ROC AUC 0.5 means it "
        "cannot.</p><dl>"
        f"<dt>ROC AUC</dt><dd>{view.auc:.3f} &plusmn; {_or(view.auc_std, 0.0):.3f} "
        f"(threshold {view.threshold:.2f})</dd>"
        f"<dt>p-value</dt><dd>{_p(view.p_value)}</dd>"
        f"<dt>rows per side</dt><dd>{_or(view.rows_per_side, '-')}, "
        f"{_or(view.cv_folds, '-')} folds</dd>"
        f"<dt>drifted</dt><dd>{_tag(view.drifted)}</dd></dl>"
    )


def _clusters_html(view: ClusterMixDrift) -> str:
    ref, new = view.reference, view.batch
    top = max([*ref.values(), *new.values(), 1e-12])
    rows = []
    for cid in ref:
        label = "noise" if cid == "-1" else cid
        rows.append(
            f"<tr><td>{escape(label)}</td>"
            f'<td class="num">{ref[cid]:.1%}</td><td class="num">{new[cid]:.1%}</td>'
            f'<td style="width:45%"><div class="bar ref" style="width:{100 * ref[cid] / top:.1f}%">'
            f'</div><div class="bar new" style="width:{100 * new[cid] / top:.1f}%"></div></td>'
            "</tr>"
        )
    return (
        "<h2>Cluster proportions</h2>"
        f"<p>PSI {view.psi:.3f} (threshold {view.threshold:.2f}), Jensen-Shannon distance "
        f"{view.js:.3f}, {_cluster_test(view)}: {_tag(view.drifted)}</p>"
        '<p class="legend"><span class="bar ref"></span>reference'
        '<span class="bar new"></span>batch</p>'
        "<table><tr><th>cluster</th><th>reference</th><th>batch</th><th></th></tr>"
        f"{''.join(rows)}</table>"
    )


def _cluster_test(view: ClusterMixDrift) -> str:
    if view.note:
        return escape(view.note)
    name = "Monte Carlo" if view.test == "monte_carlo_multinomial" else "chi-square"
    return f"{name} p {_p(view.p_value)}"


def _novelty_html(view: NoveltyDrift) -> str:
    ratio = view.distance_ratio
    return (
        "<h2>Novelty</h2><dl>"
        f"<dt>novel rows (far from every cluster)</dt><dd>{view.reference_novel_share:.1%} "
        f"&rarr; {view.batch_novel_share:.1%} (binomial p {_p(view.p_value)})</dd>"
        f"<dt>noise rows (cluster -1)</dt><dd>{view.reference_noise_share:.1%} &rarr; "
        f"{view.batch_noise_share:.1%}</dd>"
        f"<dt>mean distance to nearest centre</dt><dd>{_g(view.reference_mean_distance)} "
        f"&rarr; {_g(view.batch_mean_distance)}"
        + (f" (&times;{ratio:.2f})" if ratio is not None else "")
        + f"</dd><dt>drifted</dt><dd>{_tag(view.drifted)}</dd></dl>"
    )


def _thresholds_html(thresholds: dict[str, Any]) -> str:
    if not thresholds:
        return ""
    items = "".join(
        f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in thresholds.items()
    )
    return f"<h2>Thresholds</h2><dl>{items}</dl>"


# --- small formatting helpers ---------------------------------------------------------------


def _by_effect(columns: dict[str, ColumnDrift]) -> list[str]:
    return sorted(columns, key=lambda c: (not columns[c].drifted, -column_effect(columns[c])))


def _n(x: float) -> str:
    return format_number(x, digits=4)


def _effect(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _tag(flag: bool) -> str:
    return '<span class="tag yes">yes</span>' if flag else '<span class="tag no">no</span>'


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.2g}" if p >= 1e-300 else "&lt;1e-300"


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _or(value: Any, default: Any) -> Any:
    """Return ``value``, or ``default`` when it is None (a detail the view does not carry)."""
    return default if value is None else value


def _md_flag(view: EmbeddingDrift | ClusterMixDrift | NoveltyDrift) -> str:
    return "drifted" if view.drifted else "stable"


def _md_escape(text: str) -> str:
    # Tables and emphasis break on these, and a raw "<" could open an HTML tag in the artifact.
    for ch in "\\|*_`[]":
        text = text.replace(ch, "\\" + ch)
    return text.replace("<", "&lt;")
