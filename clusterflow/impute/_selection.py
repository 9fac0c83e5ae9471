"""Mask-and-score: hide known cells, impute them with every candidate, score against the truth.

The choice does not chase noise. Candidates are ordered from the simplest to the most complex
(``CANDIDATES``); the simplest is kept unless a more complex one restores the hidden cells better
beyond the noise of the masking itself: a paired bootstrap over the hidden rows (every
candidate filled the same cells) gives an interval of the improvement, and a candidate is
promoted only when the interval's lower end is above zero. Each kind (numerics, categoricals)
is decided on its own cells. The constants are chosen leave-one-dataset-out in
``benchmarks/impute_quality.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterflow.impute._iterative import _IterativeTableImputer
from clusterflow.impute._knn import FastKNNImputer
from clusterflow.impute._simple import _ColumnStatisticImputer

CANDIDATES = ("mean", "median", "most_frequent", "iterative", "knn", "forest")
"""Methods ``method="auto"`` compares, from the simplest to the most complex: column statistics
(no relation between columns), linear chained equations (a few coefficients per column), KNN
(local averages, no model) and extra-trees (nonlinear, thousands of leaves). ``auto`` keeps the
simplest unless a more complex one wins beyond the noise of the masking."""

# Mask-and-score repeats the masking (with fresh cells) until about this many cells were scored,
# at most this many rounds, so that a small table is not decided by a handful of cells.
# Chosen leave-one-dataset-out (benchmarks/impute_quality.py, "LODO" table).
_MIN_SCORED_CELLS = 2000
_MAX_SCORE_ROUNDS = 5
# A more complex candidate replaces the incumbent when the lower end of the central
# ``_LEVEL`` bootstrap interval of its improvement (RMSE or error rate, incumbent minus
# candidate) is above ``_MARGIN`` times the incumbent's error. Chosen leave-one-dataset-out.
_LEVEL = 0.95
_MARGIN = 0.0
_BOOTSTRAP_DRAWS = 1000
# The bootstrap resamples sampled rows (all their hidden cells over every round) by default.
_UNIT = "row"
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


def make_backend(method: str, layout: Layout, settings: Settings) -> Any:
    """Return an unfitted imputer of the encoded matrix for ``method``."""
    if method in ("mean", "median", "most_frequent"):
        return _ColumnStatisticImputer(strategy=method, n_numeric=len(layout.numeric))
    if method == "knn":
        return FastKNNImputer(n_neighbors=settings.n_neighbors)
    if method not in ("iterative", "forest"):
        raise ValueError(f"unknown imputation method {method!r}; choose one of {CANDIDATES}")
    return _IterativeTableImputer(
        blocks=list(layout.blocks),
        max_iter=settings.max_iter,
        random_state=settings.seed,
        estimator="linear" if method == "iterative" else "trees",
    )


class _Tally:
    """Squared errors, mismatches and seconds per candidate and per imputed column."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        n = len(layout.groups)
        self.total = {
            m: {"sq": 0.0, "n_num": 0, "err": 0, "n_cat": 0, "sec": 0.0} for m in CANDIDATES
        }
        self.loss = {m: np.zeros(n) for m in CANDIDATES}
        self.cells = np.zeros(n, dtype=np.int64)
        # Per masking round and sampled row: the candidate's summed squared error (numerics)
        # and mismatches (categoricals), and the row's hidden cells of each kind. A row's cells
        # share one fit and one neighbourhood, so the bootstrap resamples rows, not cells.
        self.row_loss: dict[str, dict[str, list[np.ndarray]]] = {
            "numeric": {m: [] for m in CANDIDATES},
            "categorical": {m: [] for m in CANDIDATES},
        }
        self.row_cells: dict[str, list[np.ndarray]] = {"numeric": [], "categorical": []}
        self.round_seconds: list[dict[str, float]] = []

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
        n_rows = len(truth)
        self.row_loss["numeric"][method].append(
            np.bincount(num_rows, weights=error**2, minlength=n_rows)
        )
        row_wrong = np.zeros(n_rows)
        hidden = [hide[hide[:, 1] == g, 0] for g in range(len(self.layout.groups))]
        for g, ((start, stop), codes, true) in enumerate(
            zip(self.layout.blocks, self.layout.codes, truth_codes, strict=True), start=n_num
        ):
            # Compare categories, not codes: a rare true category has no code of its own.
            rows = hidden[g]
            guess = codes[np.argmax(filled[rows, start:stop], axis=1)]
            miss = guess != true[rows]
            np.add.at(row_wrong, rows, miss)
            wrong = int(miss.sum())
            t["err"] += wrong
            t["n_cat"] += len(rows)
            self.loss[method][g] += wrong
        self.row_loss["categorical"][method].append(row_wrong)

    def count(self, hidden: list[np.ndarray], n_rows: int) -> None:
        """Add one round's hidden cells per column and per row of the sample."""
        self.cells += np.array([len(rows) for rows in hidden], dtype=np.int64)
        n_num = len(self.layout.numeric)
        numeric = [rows for g, rows in enumerate(hidden) if g < n_num]
        categorical = [rows for g, rows in enumerate(hidden) if g >= n_num]
        for kind, parts in (("numeric", numeric), ("categorical", categorical)):
            rows = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
            self.row_cells[kind].append(np.bincount(rows, minlength=n_rows).astype(np.float64))

    @property
    def rounds(self) -> int:
        """Masking rounds tallied."""
        return len(self.row_cells["numeric"])

    def records(self) -> list[dict[str, Any]]:
        """One record per candidate: RMSE, error rate, their cell-weighted mean, seconds."""
        out = []
        for method in CANDIDATES:
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


def mask_and_score(
    encoded: np.ndarray,
    truth_codes: Sequence[np.ndarray],
    layout: Layout,
    settings: Settings,
    *,
    min_cells: int = _MIN_SCORED_CELLS,
    max_rounds: int = _MAX_SCORE_ROUNDS,
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
        Candidates' parameters, share of cells hidden, sample size and seed.
    min_cells, max_rounds : int
        Masking rounds (fresh cells each) are repeated until ``min_cells`` cells were hidden,
        at most ``max_rounds`` times. A run with more rounds begins with the same rounds as
        one with fewer (the benchmark evaluates fewer rounds by truncation).

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
    rounds = 0 if per_round == 0 else min(max_rounds, -(-min_cells // per_round))
    tally = _Tally(layout)
    truth = encoded[sample]
    sample_codes = [np.asarray(codes, dtype=object)[sample] for codes in truth_codes]
    for _ in range(rounds):
        hide = known[rng.choice(len(known), size=per_round, replace=False)]
        masked = encoded.copy()
        hidden = [hide[hide[:, 1] == g, 0] for g in range(len(groups))]
        for g, rows in enumerate(hidden):
            masked[np.ix_(sample[rows], np.arange(groups[g].start, groups[g].stop))] = np.nan
        tally.count(hidden, len(sample))
        tally.round_seconds.append({})
        for method in CANDIDATES:
            backend = make_backend(method, layout, settings)
            # KNN's fit only stores rows: it uses every row as donor, as it will at full scale.
            fit_rows = masked if method == "knn" else masked[sample]
            tic = time.perf_counter()
            filled = backend.fit(fit_rows).transform(masked[sample])
            spent = time.perf_counter() - tic
            tally.total[method]["sec"] += spent
            tally.round_seconds[-1][method] = spent
            tally.add(method, filled, truth, hide, sample_codes)
    return tally


def choose(
    tally: _Tally,
    kind: str,
    *,
    level: float = _LEVEL,
    margin: float = _MARGIN,
    rounds: int | None = None,
    seed: int = 0,
) -> str | None:
    """Return the simplest candidate no more complex one beats beyond the masking's noise.

    Walks ``CANDIDATES`` from the simplest; a candidate replaces the incumbent when the lower
    end of the central ``level`` interval of a paired bootstrap of its improvement (the
    incumbent's RMSE or error rate minus its own, hidden rows resampled) exceeds ``margin``
    times the incumbent's error. Exact ties, and wins within the noise, keep the simpler one.

    Parameters
    ----------
    tally : _Tally
        Mask-and-score errors per sampled row.
    kind : {"numeric", "categorical"}
        Which hidden cells decide: RMSE on numerics, error rate on categoricals.
    level : float, default=0.95
        Coverage of the bootstrap interval.
    margin : float, default=0.0
        Improvement required beyond zero, as a share of the incumbent's error.
    rounds : int or None, default=None
        Use only the first ``rounds`` masking rounds (the benchmark evaluates fewer masks).
    seed : int, default=0
        Seed of the bootstrap draws.

    Returns
    -------
    str or None
        The chosen candidate, or None when no cell of this kind was hidden.
    """
    errors = bootstrap_errors(tally, kind, rounds=rounds, seed=seed, unit=_UNIT)
    return None if errors is None else promote(errors, level=level, margin=margin)


def bootstrap_errors(
    tally: _Tally,
    kind: str,
    *,
    rounds: int | None = None,
    seed: int = 0,
    unit: str = _UNIT,
) -> dict[str, tuple[float, np.ndarray]] | None:
    """Return each candidate's error and its paired bootstrap draws (None if nothing hidden).

    The same resampled units serve every candidate, so differences are paired. With
    ``unit="row"`` a sampled row's hidden cells of every round are one unit (they share the
    row's values, and a heavy-tailed row hidden in three rounds is one row, not three);
    ``"round"`` resamples (round, row) pairs.
    """
    if not tally.rounds:
        return None
    kept = slice(None, rounds)
    if unit == "row":
        cells = np.sum(tally.row_cells[kind][kept], axis=0)
    else:
        cells = np.concatenate(tally.row_cells[kind][kept])
    units = np.flatnonzero(cells)
    if units.size == 0:
        return None
    cells = cells[units]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units.size, size=(_BOOTSTRAP_DRAWS, units.size))
    drawn_cells = cells[draws].sum(axis=1)
    errors = {}
    for method in CANDIDATES:
        parts = tally.row_loss[kind][method][kept]
        loss = (np.sum(parts, axis=0) if unit == "row" else np.concatenate(parts))[units]
        point = loss.sum() / cells.sum()
        boot = loss[draws].sum(axis=1) / drawn_cells
        if kind == "numeric":
            errors[method] = (math.sqrt(point), np.sqrt(boot))
        else:
            errors[method] = (float(point), boot)
    return errors


def promote(
    errors: dict[str, tuple[float, np.ndarray]], *, level: float = _LEVEL, margin: float = _MARGIN
) -> str:
    """Walk the candidates from the simplest, promoting only wins beyond the bootstrap noise."""
    chosen = CANDIDATES[0]
    for method in CANDIDATES[1:]:
        gain = errors[chosen][1] - errors[method][1]
        lower = float(np.quantile(gain, (1.0 - level) / 2.0))
        if lower > margin * errors[chosen][0]:
            chosen = method
    return chosen
