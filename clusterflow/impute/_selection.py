"""Mask-and-score: hide known cells, impute them with every candidate, score against the truth."""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from clusterflow.impute._base import _AcceptsNaN, _single_threaded_blas, _thread_map
from clusterflow.impute._iterative import _IterativeTableImputer
from clusterflow.impute._knn import FastKNNImputer
from clusterflow.impute._simple import _ColumnStatisticImputer

CANDIDATES = ("mean", "median", "most_frequent", "knn", "iterative", "forest")
"""Methods ``method="auto"`` compares, in order of preference when scores tie."""

BLENDS = ("knn+iterative", "knn+forest", "iterative+forest", "knn+iterative+forest")
"""Averages of the model-based candidates' imputations that ``method="auto"`` also scores.

Their errors are partly independent (neighbours, a linear fit, trees), so on the numerics the
average's RMSE is never above the mean of the parts' RMSEs and often below either (the triangle
inequality); categoricals take the category with the highest averaged score, which has no such
bound. A blend is chosen only when it scores strictly better than every single method (it costs
the sum of its parts)."""

SCORED = CANDIDATES + BLENDS

# The order candidates are started in when they run side by side: the longest first, so that
# the short ones fill the other cores meanwhile (at 100k x 20: forest 6.0 s, knn 1.8 s,
# iterative 0.9 s, the column statistics milliseconds).
_START_ORDER = ("forest", "knn", "iterative", "mean", "median", "most_frequent")

# Mask-and-score repeats the masking (with fresh cells) until about this many cells were scored,
# so that selection on a small table is not decided by a handful of cells.
_MIN_SCORED_CELLS = 2000
_MAX_SCORE_ROUNDS = 5
# A column whose hidden cells the chosen method restores with an error at least this share of the
# mean's (numerics) or the mode's (categoricals) is reported as filled no better than its mean.
_NO_BETTER_THAN_MEAN = 1.0


@dataclass(frozen=True)
class Layout:
    """Where each imputed column sits in the encoded matrix.

    Parameters
    ----------
    numeric : list of str
        Numeric columns, one encoded column each, first.
    blocks : list of (int, int)
        ``(start, stop)`` of each categorical's one-hot block, after the numerics.
    categorical : list of str
        Categorical columns, in block order.
    codes : list of ndarray
        The one-hot encoded categories of each categorical (object arrays).
    """

    numeric: list[str]
    blocks: list[tuple[int, int]]
    categorical: list[str] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)

    @property
    def groups(self) -> list[slice]:
        """Encoded columns of each imputed column: one per numeric, a block per categorical."""
        numeric = [slice(i, i + 1) for i in range(len(self.numeric))]
        return numeric + [slice(a, b) for a, b in self.blocks]


@dataclass(frozen=True)
class Settings:
    """Parameters of the candidates and of the masking."""

    n_neighbors: int = 5
    max_iter: int = 10
    mask_fraction: float = 0.1
    score_sample: int = 5000
    seed: int = 0
    n_jobs: int | None = None


def make_backend(method: str, layout: Layout, settings: Settings) -> Any:
    """Return an unfitted imputer of the encoded matrix for ``method`` (a blend: ``"a+b"``)."""
    if "+" in method:
        parts = [make_backend(m, layout, settings) for m in method.split("+")]
        return _MeanImputer(parts=parts, n_jobs=settings.n_jobs)
    if method in ("mean", "median", "most_frequent"):
        return _ColumnStatisticImputer(strategy=method, n_numeric=len(layout.numeric))
    if method == "knn":
        return FastKNNImputer(n_neighbors=settings.n_neighbors)
    if method not in ("iterative", "forest"):
        raise ValueError(f"unknown imputation method {method!r}; choose one of {SCORED}")
    return _IterativeTableImputer(
        blocks=list(layout.blocks),
        max_iter=settings.max_iter,
        random_state=settings.seed,
        estimator="linear" if method == "iterative" else "trees",
    )


def fit_parts(
    methods: Sequence[str], encoded: np.ndarray, layout: Layout, settings: Settings
) -> dict[str, Any]:
    """Fit the parts of ``methods`` (blends or single methods) on ``encoded``, each once.

    The numeric and the categorical choice are often blends with parts in common
    (``knn+iterative+forest`` and ``knn+iterative``). Every part is seeded, so fitting one
    twice gives the same model at twice the cost: a part of two blends is fitted once, and
    :func:`assemble` puts the same object in both. The parts are fitted side by side on
    ``settings.n_jobs`` threads, the longest first.

    Returns
    -------
    dict
        The fitted imputer of each single method named in ``methods``.
    """
    named = {m for method in methods for m in method.split("+")}
    parts = [m for m in _START_ORDER if m in named] + sorted(named - set(_START_ORDER))
    fit = _thread_map(
        lambda m: make_backend(m, layout, settings).fit(encoded), parts, settings.n_jobs
    )
    return dict(zip(parts, fit, strict=True))


def assemble(method: str, parts: dict[str, Any], n_jobs: int | None) -> Any:
    """Return the fitted imputer of ``method`` made of the fitted ``parts`` (not copied)."""
    if "+" not in method:
        return parts[method]
    return _MeanImputer.of_fitted([parts[m] for m in method.split("+")], n_jobs=n_jobs)


def impute_with(backends: Sequence[Any], encoded: np.ndarray) -> list[np.ndarray]:
    """Return every backend's imputation of ``encoded``, each distinct part transformed once.

    A blend's imputation is the mean of its parts' (as ``_MeanImputer.transform`` computes it),
    and a part that two backends share (see :func:`fit_parts`) is transformed only once; only
    the imputations of shared parts are kept until their last use.
    """

    def parts(backend: Any) -> list[Any]:
        if isinstance(backend, _MeanImputer):
            check_is_fitted(backend)
            return list(backend.parts_)
        return [backend]

    uses = Counter(id(p) for backend in backends for p in parts(backend))
    kept: dict[int, np.ndarray] = {}

    def imputed(part: Any) -> np.ndarray:
        uses[id(part)] -= 1
        if id(part) in kept:
            return kept.pop(id(part)) if uses[id(part)] == 0 else kept[id(part)]
        filled = part.transform(encoded)
        if uses[id(part)]:
            kept[id(part)] = filled
        return filled

    out = []
    for backend in backends:
        if isinstance(backend, _MeanImputer):
            total = np.asarray(sum(imputed(p) for p in parts(backend)), dtype=np.float64)
            out.append(total / len(backend.parts_))
        else:
            out.append(imputed(backend))
    return out


class _Tally:
    """Squared errors, mismatches and seconds per candidate and per imputed column."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        n = len(layout.groups)
        self.total = {m: {"sq": 0.0, "n_num": 0, "err": 0, "n_cat": 0, "sec": 0.0} for m in SCORED}
        self.loss = {m: np.zeros(n) for m in SCORED}
        self.cells = np.zeros(n, dtype=np.int64)

    def add(
        self,
        method: str,
        filled: np.ndarray,
        truth: np.ndarray,
        hide: np.ndarray,
        truth_codes: list[np.ndarray],
    ) -> None:
        """Score one candidate's ``filled`` sample against the hidden ``(row, column)`` cells."""
        n_num = len(self.layout.numeric)
        t = self.total[method]
        num_rows, num_cols = hide[hide[:, 1] < n_num].T
        error = filled[num_rows, num_cols] - truth[num_rows, num_cols]
        # One dot product in the masking's order keeps the candidates' totals bit for bit.
        t["sq"] += float(error @ error)
        t["n_num"] += len(num_rows)
        self.loss[method][:n_num] += np.bincount(num_cols, weights=error**2, minlength=n_num)
        hidden = [hide[hide[:, 1] == g, 0] for g in range(len(self.layout.groups))]
        for g, ((start, stop), codes, true) in enumerate(
            zip(self.layout.blocks, self.layout.codes, truth_codes, strict=True), start=n_num
        ):
            # Compare categories, not codes: a rare true category has no code of its own.
            rows = hidden[g]
            guess = codes[np.argmax(filled[rows, start:stop], axis=1)]
            wrong = int((guess != true[rows]).sum())
            t["err"] += wrong
            t["n_cat"] += len(rows)
            self.loss[method][g] += wrong

    def add_round(
        self,
        runs: dict[str, tuple[Any, float]],
        truth: np.ndarray,
        hide: np.ndarray,
        truth_codes: list[np.ndarray],
    ) -> None:
        """Score one masking round: every candidate's ``(filled, seconds)``, then the blends."""
        # Tallied in CANDIDATES order whatever finished first: the totals stay bit for bit.
        for method in CANDIDATES:
            filled, seconds = runs[method]
            self.total[method]["sec"] += seconds
            self.add(method, filled, truth, hide, truth_codes)
        for blend in BLENDS:
            parts = blend.split("+")
            self.total[blend]["sec"] += sum(runs[m][1] for m in parts)
            mean = sum(runs[m][0] for m in parts) / len(parts)
            self.add(blend, mean, truth, hide, truth_codes)

    def count(self, hidden: list[np.ndarray]) -> None:
        """Add one round's hidden cells per column."""
        self.cells += np.array([len(rows) for rows in hidden], dtype=np.int64)

    def records(self) -> list[dict[str, Any]]:
        """One record per candidate: RMSE, error rate, their cell-weighted mean, seconds."""
        out = []
        for method in SCORED:
            t = self.total[method]
            rmse = math.sqrt(t["sq"] / t["n_num"]) if t["n_num"] else math.nan
            err = t["err"] / t["n_cat"] if t["n_cat"] else math.nan
            cells = t["n_num"] + t["n_cat"]
            score = math.nan
            if cells:
                score = (
                    (rmse * t["n_num"] if t["n_num"] else 0.0)
                    + (err * t["n_cat"] if t["n_cat"] else 0.0)
                ) / cells
            out.append(
                {
                    "method": method,
                    "numeric_rmse": float(rmse),
                    "categorical_error": float(err),
                    "score": float(score),
                    "seconds": float(t["sec"]),
                }
            )
        return out

    def column_records(self, numeric_method: str, categorical_method: str) -> list[dict[str, Any]]:
        """One record per imputed column: the chosen method's error against the mean's."""
        out = []
        names = [*self.layout.numeric, *self.layout.categorical]
        for g, name in enumerate(names):
            n = int(self.cells[g])
            numeric = g < len(self.layout.numeric)
            chosen = numeric_method if numeric else categorical_method
            if n == 0:
                error = baseline = math.nan
            elif numeric:
                error = math.sqrt(self.loss[chosen][g] / n)
                baseline = math.sqrt(self.loss["mean"][g] / n)
            else:
                error, baseline = self.loss[chosen][g] / n, self.loss["mean"][g] / n
            out.append(
                {
                    "column": name,
                    "kind": "numeric_rmse" if numeric else "categorical_error",
                    "hidden_cells": n,
                    "method": chosen,
                    "error": float(error),
                    "mean_error": float(baseline),
                    "no_better_than_mean": bool(n and error >= _NO_BETTER_THAN_MEAN * baseline),
                }
            )
        return out


def _impute_sample(
    method: str, masked: np.ndarray, masked_sample: np.ndarray, layout: Layout, settings: Settings
) -> tuple[np.ndarray, float]:
    """Fit ``method`` on the masked table and impute the sample's rows; return them and seconds.

    The imputers copy what they are given, so the candidates share both arrays read-only.
    """
    backend = make_backend(method, layout, settings)
    # KNN's fit only stores rows: it uses every row as donor, as it will at full scale.
    fit_rows = masked if method == "knn" else masked_sample
    tic = time.perf_counter()
    filled = backend.fit(fit_rows).transform(masked_sample)
    return filled, time.perf_counter() - tic


@_single_threaded_blas
def mask_and_score(
    encoded: np.ndarray,
    truth_codes: Sequence[np.ndarray],
    layout: Layout,
    settings: Settings,
) -> _Tally:
    """Hide known cells of a sample of rows, impute them with every candidate, tally the errors.

    Parameters
    ----------
    encoded : ndarray of shape (n_rows, n_encoded)
        The encoded table (standardised numerics, one-hot blocks), NaN where missing.
    truth_codes : sequence of ndarray
        The original values of each categorical (object arrays), to compare categories.
    layout : Layout
        Where each column sits in ``encoded``.
    settings : Settings
        Candidates' parameters, share of cells hidden, sample size, seed and the threads the
        candidates run on side by side (``n_jobs``; the results do not depend on it).

    Returns
    -------
    _Tally
        Errors and seconds per candidate and per column.
    """
    rng = np.random.default_rng(settings.seed)
    groups = layout.groups
    n_rows = encoded.shape[0]
    observed = np.zeros((n_rows, len(groups)), dtype=bool)
    for g, columns in enumerate(groups):
        observed[:, g] = ~np.isnan(encoded[:, columns.start])
    sample = np.sort(rng.choice(n_rows, size=min(settings.score_sample, n_rows), replace=False))
    known = np.argwhere(observed[sample])
    per_round = int(round(settings.mask_fraction * len(known)))
    rounds = 0 if per_round == 0 else min(_MAX_SCORE_ROUNDS, -(-_MIN_SCORED_CELLS // per_round))
    tally = _Tally(layout)
    truth = encoded[sample]
    sample_codes = [np.asarray(codes, dtype=object)[sample] for codes in truth_codes]
    for _ in range(rounds):
        hide = known[rng.choice(len(known), size=per_round, replace=False)]
        masked = encoded.copy()
        hidden = [hide[hide[:, 1] == g, 0] for g in range(len(groups))]
        for g, rows in enumerate(hidden):
            masked[np.ix_(sample[rows], np.arange(groups[g].start, groups[g].stop))] = np.nan
        tally.count(hidden)
        impute = functools.partial(
            _impute_sample,
            masked=masked,
            masked_sample=masked[sample],
            layout=layout,
            settings=settings,
        )
        runs: dict[str, tuple[Any, float]] = dict(
            zip(_START_ORDER, _thread_map(impute, _START_ORDER, settings.n_jobs), strict=True)
        )
        tally.add_round(runs, truth, hide, sample_codes)
    return tally


def _best(records: list[dict[str, Any]]) -> tuple[str, str]:
    """Return the candidates that restore hidden numerics and hidden categories best.

    Each kind is judged on its own cells: one combined score let a method that wins the
    categoricals fill the numerics too, although another restores them better (on openintro's
    mammals the forest won the 1-5 risk indices and was kept for the heavy-tailed weights, where
    it was 38% worse than the iterative imputer; see benchmarks/impute_quality.py). ``min``
    keeps the first of equal errors, so ties go to the simpler method (and a blend, listed after
    the single methods, wins only when it is strictly better); with nothing hidden of
    a kind, the other kind's choice (or the mean) is used.
    """

    def first_best(key: str) -> str | None:
        scored = [r for r in records if not math.isnan(r[key])]
        return min(scored, key=lambda r: r[key])["method"] if scored else None

    numeric, categorical = first_best("numeric_rmse"), first_best("categorical_error")
    method = numeric or categorical or "mean"
    return method, categorical or method


class _MeanImputer(_AcceptsNaN, TransformerMixin, BaseEstimator):
    """The average of several imputers' imputations of the encoded matrix (a blend).

    Averaging one-hot blocks averages the category scores, so a categorical is decoded to the
    category the parts favour together.

    Parameters
    ----------
    parts : list of estimator
        Unfitted imputers of the encoded matrix.
    n_jobs : int or None, default=None
        Threads the parts are fitted on side by side (scikit-learn's convention: None is one,
        -1 every core).
    """

    def __init__(self, *, parts: Sequence[Any] = (), n_jobs: int | None = None) -> None:
        self.parts = parts
        self.n_jobs = n_jobs

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Blends saved before n_jobs existed: one thread, as they were fitted.
        super().__setstate__({"n_jobs": None, **state})

    @classmethod
    def of_fitted(cls, parts: Sequence[Any], n_jobs: int | None = None) -> _MeanImputer:
        """Return the blend of ``parts``, fitted already on the same matrix (not copied)."""
        blend = cls(parts=[clone(part) for part in parts], n_jobs=n_jobs)
        blend.parts_ = list(parts)
        blend.n_features_in_ = parts[0].n_features_in_
        return blend

    @_single_threaded_blas
    def fit(self, X: np.ndarray, y: Any = None) -> _MeanImputer:
        """Fit every part on ``X``."""
        if not len(self.parts):
            raise ValueError("a blend needs at least one imputer in parts")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.parts_ = _thread_map(lambda part: clone(part).fit(X), self.parts, self.n_jobs)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the mean of the parts' imputations of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return impute_with([self], X)[0]
