"""The columns of the sweep table, by what they hold (no imports: the stages read it cheaply)."""

from __future__ import annotations

_CANDIDATE = ("algorithm", "k", "param")
"""Which candidate a row describes."""

_INTERNAL_INDICES = ("silhouette", "davies_bouldin", "calinski_harabasz", "inertia")
"""Scores of the labeling against the rows' own geometry."""

SUMMARY_METRICS = (*_INTERNAL_INDICES, "bic", "stability")
"""The chosen candidate's scores reported in summary.json (the sweep table has them all)."""

_DIAGNOSTICS = ("prediction_strength", "evidence", "evidence_share", "min_share", "noise_share")
"""Agreement with refits, evidence in the reduced space (and the share it explains), and the
shares of the smallest cluster and of noise."""

_OUTCOME = ("seconds", "viable", "selected")
"""How long the candidate took to score, and what the sweep made of it."""

RESULT_COLUMNS = [*_CANDIDATE, *SUMMARY_METRICS, *_DIAGNOSTICS, *_OUTCOME]
"""The columns of the sweep table, in order."""
