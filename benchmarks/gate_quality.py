"""Champion gate benchmark: does the gate promote a challenger that is worse against the labels?

    PYTHONPATH=. python benchmarks/gate_quality.py              # the quality benchmark's tables
    PYTHONPATH=. python benchmarks/gate_quality.py --sets iris,penguins --seeds 2

For every labeled table of ``benchmarks/quality`` (same loaders, clusterflow's default features;
sets in the silhouette regime, the text sets and digits, only with ``--sets``: there every
evidence scorer is the same held-out silhouette, so they say nothing about the likelihood)
and every seed, the rows are split as training does: a seeded 15 % held out (at most 2,000; at
least 40 rows on small sets), the rest for fitting. Candidate models are fitted on the fitting
rows only: KMeans at every k of the default grid up to ``2 x`` the true number of groups, and a
Gaussian mixture at the same k when the features have at most 20 columns. Then every ordered
pair (champion A, challenger B) whose agreement with the labels on the held-out rows differs by
more than ``--margin`` ARI is put through the gate with each scorer:

- ``out-of-sample``: the gate as it is (``clusterflow.gate.compare`` with ``Fitted``: Gaussians
  from the training rows, held-out rows scored under them, unpenalised);
- ``out-of-sample+BIC``: the same, minus the BIC penalty per row at the fitting rows' size (the
  penalty the sweep pays, so both estimate the sweep's evidence);
- ``in-sample``: the selection evidence on the held-out rows alone (the BIC penalty per row of
  ``labeling_score``; the gate before this benchmark);
- ``silhouette``: the held-out rows' silhouette (the gate before issue 11).

Sets in the silhouette regime (every set with a text column: the reduced space explains less
than ``MIN_EXPLAINED``) are judged by the text scorers of :mod:`benchmarks.gate_text_scores`
instead (``out-of-sample`` is again the gate as it is; the others are candidates for its
silhouette branch: the cosine silhouette it used before, held-out likelihoods on the sphere
and in 16 to 64 principal components, centroid margins, the silhouette against the training
rows, prediction strength). The gate draws the same resamples for every pair at one seed, so
each candidate's draws are computed once and a pair's are their difference (checked against
``gate.compare``). ``$CLUSTERFLOW_GATE_TEXT_SCORERS`` (comma list) runs a subset and
``$CLUSTERFLOW_GATE_CANDIDATES`` (a folder) keeps the fitted candidates between runs::

    PYTHONPATH=. python benchmarks/gate_quality.py --seeds 5 \
        --sets stackoverflow5,stackoverflow20,banking77,tweets,birds,tweets_years,fastfood

A *false promotion* is a promoted challenger that is worse against the labels; *power* is the
share of better challengers promoted. Both are printed per set and scorer, and the scorer and
the confidence level of the interval are evaluated leave-one-dataset-out: on the other sets,
the most powerful option among those promoting at most 5% of the worse challengers (what a 95%
interval promises).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from benchmarks.gate_text_scores import TEXT_SCORERS, TextScorers  # noqa: E402
from benchmarks.quality.collect import embeddings, features, imputed, imputer_tag  # noqa: E402
from benchmarks.quality.datasets import LOADERS, Dataset  # noqa: E402
from benchmarks.quality.run import markdown  # noqa: E402
from clusterflow import gate  # noqa: E402
from clusterflow.cluster.evidence import MIN_EXPLAINED, Reducer, labeling_score  # noqa: E402
from clusterflow.sweep import k_grid  # noqa: E402

LEVELS = [0.8, 0.9, 0.95, 0.99]
TEXT_LEVELS = [*LEVELS, 0.995]
RESAMPLES = 200
CACHE = Path(os.environ.get("CLUSTERFLOW_BENCH_CACHE", Path.home() / ".cache/clusterflow-bench"))
VERSION = "t5"
TEXT_SETS = {"stackoverflow5", "stackoverflow20", "banking77", "tweets"}
SCORERS = ["out-of-sample", "out-of-sample+BIC", "in-sample", "silhouette"]
EVIDENCE = SCORERS[:3]


def candidates(X: np.ndarray, fit: np.ndarray, held: np.ndarray, true_k: int, seed: int) -> dict:
    """Labelings of the fitting and held-out rows by models fitted on the fitting rows."""
    out = {}
    top = min(2 * true_k, len(fit) // 5)
    for k in k_grid(2, max(2, top)):
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(X[fit])
        out[f"kmeans{k}"] = (km.predict(X[fit]), km.predict(X[held]))
        if X.shape[1] <= 20:
            gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed)
            gm.fit(X[fit])
            out[f"gmm{k}"] = (gm.predict(X[fit]), gm.predict(X[held]))
    return out


def cached_candidates(
    name: str, X: np.ndarray, fit: np.ndarray, held: np.ndarray, true_k: int, seed: int
) -> dict:
    """:func:`candidates`, kept in ``$CLUSTERFLOW_GATE_CANDIDATES`` when set (reruns of scorers)."""
    folder = os.environ.get("CLUSTERFLOW_GATE_CANDIDATES")
    if not folder:
        return candidates(X, fit, held, true_k, seed)
    path = Path(folder) / f"{name}-{len(X)}-{seed}.pkl"
    if path.exists():
        return pd.read_pickle(path)
    out = candidates(X, fit, held, true_k, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.to_pickle(out, path)
    return out


def likelihood_regime(ds: Dataset) -> bool:
    """Whether the evidence of this set's default features is the likelihood (not silhouette)."""
    X = features(ds, imputed(ds), embeddings(ds))
    return Reducer(X, random_state=0).explained >= MIN_EXPLAINED


def run_set(ds: Dataset, seeds: int, margin: float) -> list[dict]:
    table, emb = imputed(ds), embeddings(ds)
    X = features(ds, table, emb)
    rows = []
    for seed in range(seeds):
        share = max(0.15, 40 / len(X))  # small sets: 40 rows (the gate needs 30)
        held = gate.holdout_positions(len(X), share=share, max_rows=2000, random_state=seed)
        fit = gate.reference_positions(len(X), held, random_state=seed)
        cands = cached_candidates(ds.name, X, fit, held, ds.true_k, seed)
        likelihood = Reducer(X[fit], random_state=seed).explained >= MIN_EXPLAINED
        ari = {c: adjusted_rand_score(ds.labels[held], v[1]) for c, v in cands.items()}
        names = list(cands)
        if not likelihood:
            rows += text_pairs(ds.name, seed, X, fit, held, cands, ari, margin)
            continue
        for a in names:
            for b in names:
                if a == b or abs(ari[b] - ari[a]) <= margin:
                    continue
                verdicts = {}
                for scorer in SCORERS:
                    if scorer in EVIDENCE and not likelihood and verdicts:
                        # text: every evidence scorer is the same held-out silhouette
                        verdicts[scorer] = verdicts["out-of-sample"]
                    else:
                        verdicts[scorer] = compare_at_levels(
                            X, fit, held, cands[a], cands[b], scorer, seed
                        )
                for scorer, found in verdicts.items():
                    rows.append(
                        {
                            "set": ds.name,
                            "seed": seed,
                            "champion": a,
                            "challenger": b,
                            "better": ari[b] > ari[a],
                            "scorer": scorer,
                            **found,
                        }
                    )
    return rows


def text_scorer_names() -> list[str]:
    """The text scorers to run: ``$CLUSTERFLOW_GATE_TEXT_SCORERS`` (comma list) or all."""
    chosen = os.environ.get("CLUSTERFLOW_GATE_TEXT_SCORERS")
    return chosen.split(",") if chosen else TEXT_SCORERS


def text_pairs(
    name: str,
    seed: int,
    X: np.ndarray,
    fit: np.ndarray,
    held: np.ndarray,
    cands: dict,
    ari: dict,
    margin: float,
) -> list[dict]:
    """The silhouette regime: every text scorer, each candidate's bootstrap draws computed once.

    ``gate.compare`` draws the same row multiplicities for every pair at one seed (its generator
    is seeded by ``random_state`` and the held-out rows are the same), so a pair's draws of
    (challenger - champion) are the difference of the two candidates' draws: the same verdicts
    as calling ``compare`` per pair (checked for ``out-of-sample`` on the first pair).
    """
    n = len(held)
    rng = np.random.default_rng(seed)
    W = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(RESAMPLES)])
    scorers = TextScorers(X[held], X[fit], seed)
    names = text_scorer_names()
    draws = {(c, s): scorers.draws(s, v[0], v[1], W)[1] for c, v in cands.items() for s in names}
    rows, checked = [], False
    for a in cands:
        for b in cands:
            if a == b or abs(ari[b] - ari[a]) <= margin:
                continue
            if not checked and "out-of-sample" in names:
                found = gate.compare(
                    X[held], cands[b][1], cands[a][1], resamples=RESAMPLES, random_state=seed
                )
                assert np.allclose(
                    found.draws, draws[b, "out-of-sample"] - draws[a, "out-of-sample"]
                )
                checked = True
            for s in names:
                d = draws[b, s] - draws[a, s]
                rows.append(
                    {
                        "set": name,
                        "seed": seed,
                        "champion": a,
                        "challenger": b,
                        "better": ari[b] > ari[a],
                        "scorer": s,
                        **{
                            f"promote@{level}": bool(np.quantile(d, (1 - level) / 2) > 0)
                            for level in TEXT_LEVELS
                        },
                    }
                )
    return rows


def compare_at_levels(
    X: np.ndarray, fit: np.ndarray, held: np.ndarray, a: tuple, b: tuple, scorer: str, seed: int
) -> dict:
    """Whether the gate promotes b over a at each confidence level."""
    if scorer.startswith("out-of-sample"):
        penalised = scorer.endswith("BIC")
        fitted = gate.Fitted(X=X[fit], challenger=b[0], champion=a[0], penalised=penalised)
        score = labeling_score
    elif scorer == "in-sample":
        fitted, score = None, labeling_score
    else:
        fitted, score = None, gate.provisional_labeling_score
    found = gate.compare(
        X[held], b[1], a[1], resamples=200, random_state=seed, score=score, fitted=fitted
    )
    return {
        f"promote@{level}": bool(np.quantile(found.draws, (1 - level) / 2) > 0) for level in LEVELS
    }


def summarise(frame: pd.DataFrame, level: float) -> pd.DataFrame:
    col = f"promote@{level}"
    f = frame.assign(
        worse_promoted=frame[col] & ~frame["better"],
        better_promoted=frame[col] & frame["better"],
        worse=~frame["better"],
    )
    g = f.groupby(["set", "scorer"])[["worse_promoted", "better_promoted", "worse", "better"]].sum()
    return pd.DataFrame(
        {
            "pairs": g["worse"] + g["better"],
            "false promotion": g["worse_promoted"] / g["worse"].where(g["worse"] > 0),
            "power": g["better_promoted"] / g["better"].where(g["better"] > 0),
        }
    ).reset_index()


MAX_FALSE_PROMOTION = 0.05
"""What a 95% interval promises: at most this share of worse challengers promoted."""


def lodo(frame: pd.DataFrame) -> pd.DataFrame:
    """The scorer and the confidence level chosen on the other sets, scored on the held-out set.

    Choice on the other sets (pooled over their pairs): among the options whose false-promotion
    rate is at most :data:`MAX_FALSE_PROMOTION`, the most powerful; when none is, the one with
    the fewest false promotions.
    """
    levels = [
        lv
        for lv in TEXT_LEVELS
        if f"promote@{lv}" in frame and frame[f"promote@{lv}"].notna().all()
    ]
    options = [(scorer, level) for scorer in frame["scorer"].unique() for level in levels]
    sets = sorted(frame["set"].unique())

    def rates(scorer: str, level: float, chosen_sets: list[str]) -> tuple[float, float]:
        part = frame[(frame["scorer"] == scorer) & frame["set"].isin(chosen_sets)]
        promoted = part[f"promote@{level}"].astype(bool)
        better = part["better"].astype(bool)
        false = float(promoted[~better].mean()) if (~better).any() else 0.0
        power = float(promoted[better].mean()) if better.any() else float("nan")
        return false, power

    def merit(option: tuple[str, float], others: list[str]) -> tuple[bool, float]:
        false, power = rates(*option, others)
        ok = false <= MAX_FALSE_PROMOTION
        return ok, (power if ok else -false)

    rows = []
    default = ("out-of-sample", 0.95)
    for held in sets:
        others = [s for s in sets if s != held]
        order = [default] + [o for o in options if o != default]
        chosen = max(order, key=lambda o: merit(o, others))
        false, power = rates(*chosen, [held])
        d_false, d_power = rates(*default, [held])
        rows.append(
            {
                "held out": held,
                "chosen on others": f"{chosen[0]} @ {chosen[1]}",
                "false promotion": false,
                "power": power,
                "default false promotion": d_false,
                "default power": d_power,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="", help="comma list of sets (default: the tables)")
    parser.add_argument("--seeds", type=int, default=3, help="hold-out seeds per set")
    parser.add_argument("--margin", type=float, default=0.05, help="ARI gap that decides a pair")
    args = parser.parse_args()
    names = args.sets.split(",") if args.sets else [n for n in LOADERS if n not in TEXT_SETS]
    frames = []
    for name in names:
        ds = LOADERS[name]()
        # The imputer's version too: the sets with gaps are clustered on imputed(ds).
        key = f"{VERSION}{imputer_tag(ds)}-s{args.seeds}-m{args.margin}"
        if text_scorer_names() != TEXT_SCORERS:
            key += "-" + "+".join(text_scorer_names())
        path = CACHE / "gate" / f"{name}-{key}.csv"
        if not path.exists():
            if not args.sets and not likelihood_regime(ds):
                print(f"{name}: skipped (silhouette regime)", file=sys.stderr, flush=True)
                continue
            t0 = time.perf_counter()
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(run_set(ds, args.seeds, args.margin)).to_csv(path, index=False)
            print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        frames.append(pd.read_csv(path))
    frame = pd.concat(frames, ignore_index=True)
    print(
        "## Gate verdicts against the labels (95% interval), pairs differing by > "
        f"{args.margin} ARI, {args.seeds} hold-out seeds\n"
    )
    table = summarise(frame, 0.95).pivot(index="set", columns="scorer")
    table.columns = [f"{scorer}: {what}" for what, scorer in table.columns]
    print(markdown(table.reset_index()))
    total = summarise(frame.assign(set="all"), 0.95)
    print("\nall sets pooled:\n")
    print(markdown(total))
    print(
        "\n## Scorer and confidence level, leave-one-dataset-out (chosen on the other sets: the "
        f"most powerful with at most {MAX_FALSE_PROMOTION:.0%} false promotions; default "
        "out-of-sample @ 0.95)\n"
    )
    print(markdown(lodo(frame)))


if __name__ == "__main__":
    main()
