"""The driver's fits on gathered samples (steps 4, 6 and 7 of the package docstring).

The imputer, the feature builder and the sweep, then the model's finishing touches once every
partition is assigned.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow import stages
from clusterflow.errors import NoViableClustering, ValidationFailed
from clusterflow.model import NOVELTY_QUANTILE, ClusterModel, dump_component
from clusterflow.partitioned._context import StageContext
from clusterflow.stages.artifacts import write_plots
from clusterflow.stages.clustering import chosen_metrics
from clusterflow.stages.imputation import NO_FEATURES, fitted_method

logger = logging.getLogger("clusterflow.partitioned")


def fit_imputer(ctx: StageContext) -> tuple[dict[str, Any], Any]:
    """Fit the imputer on the rows in-process would fit on; return ``Imputed``'s fields.

    Those are the training rows (the gate's held-out ones left out), down to a seeded sample.
    The gaps are profiled on every valid row, as in-process (above
    :data:`~clusterflow.stages.FIT_ROWS` rows, on a seeded sample of that many, where in-process
    profiles them all); both sets of rows are gathered at once.
    """
    config, roles, folder = ctx.config, ctx.roles, ctx.folder
    held, train = stages.training_rows(ctx.validated, config)
    fit_pos = stages.train_fit_rows(train, ctx.n_valid, config.random_state)
    fit_pos = np.arange(ctx.n_valid) if fit_pos is None else fit_pos
    profile_pos = stages.fit_sample(ctx.n_valid, stages.FIT_ROWS, config.random_state)
    profile_pos = np.arange(ctx.n_valid) if profile_pos is None else profile_pos
    rows = np.union1d(fit_pos, profile_pos)
    method = NO_FEATURES
    imputer = None
    scores: list[dict] = []
    profile: dict = {}
    plot_path = None
    if roles.features:
        gathered = ctx.gather("valid", ".parquet", rows, columns=list(roles.features))
        gathered = gathered.astype({c: float for c in roles.numeric}).reset_index(drop=True)
        seen = gathered.iloc[np.searchsorted(rows, profile_pos)].reset_index(drop=True)
        table = gathered.iloc[np.searchsorted(rows, fit_pos)].reset_index(drop=True)
        if int(seen.isna().sum().sum()):
            from clusterflow.missingness import plot_missingness, profile_missingness

            prof = profile_missingness(seen, random_state=config.random_state)
            profile = prof.to_dict()
            (folder / "missingness.md").write_text(prof.to_markdown())
            plot_missingness(seen, folder / "missingness.png")
            plot_path = str(folder / "missingness.png")
        stages.check_fit_rows(table, len(held))
        imputer = stages.make_imputer(fitted_method(config), roles, config).fit(table)
        method = imputer.method_
        if getattr(imputer, "scores_", None) is not None:
            scores = json.loads(imputer.scores_.to_json(orient="records"))
    return {
        "key": folder.name,
        "path": str(folder / "imputed"),
        "imputer_path": str(folder / "imputer"),
        "imputer_format": dump_component(imputer, folder / "imputer"),
        "method": method,
        "categorical_method": getattr(imputer, "categorical_method_", method)
        if roles.categorical
        else None,
        "scores": scores,
        "missing_cells": 0,
        "profile": profile,
        "plot_path": plot_path,
    }, imputer


def sweep_on_sample(ctx: StageContext, key: str, imputer: Any) -> tuple[stages.Swept, ClusterModel]:
    """Fit the feature builder and the sweep exactly as in-process, on gathered samples."""
    config, roles, folder, n_valid = ctx.config, ctx.roles, ctx.folder, ctx.n_valid
    stages.check_room(config, n_valid)
    # The gate's held-out rows are left out of the fits, exactly as in-process.
    held, train = stages.training_rows(ctx.validated, config)
    fit_pos = stages.train_fit_rows(train, n_valid, config.random_state)
    fit_pos = np.arange(n_valid) if fit_pos is None else fit_pos
    table, emb = ctx.gather_features(fit_pos)
    builder = stages.make_features(roles, config).fit(table, embeddings=emb)
    clusterer = stages.make_sweep(config, n_valid, len(train))
    sample = stages.sweep_rows(len(train), config.sweep.fit_rows, config.random_state)
    sweep_pos = train if sample is None else train[sample]
    if np.array_equal(sweep_pos, fit_pos):
        sweep_table, sweep_emb = table, emb  # the builder's rows are the sweep's rows
    else:
        sweep_table, sweep_emb = ctx.gather_features(sweep_pos)
    X_sweep = builder.transform(sweep_table, embeddings=sweep_emb)
    clusterer.fit(X_sweep)
    model = ClusterModel(
        roles=roles,
        imputer=imputer,
        features=builder,
        clusterer=clusterer,
        embedder=stages.embedder_spec(config) if ctx.has_text else None,
    )
    results = clusterer.results_.copy()
    results.to_csv(folder / "sweep.csv", index=False)
    np.save(folder / "holdout.npy", held)
    plots = write_plots(
        folder, results, X_sweep, np.asarray(clusterer.predict(X_sweep), dtype=int), config
    )
    return stages.Swept(
        key=key,
        model_dir=str(folder / "model"),
        labels_path=str(folder / "labels.npy"),
        results_path=str(folder / "sweep.csv"),
        algorithm=str(clusterer.algorithm_),
        k=int(clusterer.k_),
        metrics=chosen_metrics(results),
        rule=str(getattr(clusterer, "rule_", "")),
        disagreement=str(getattr(clusterer, "disagreement_", "") or ""),
        noise_share=0.0,
        holdout_path=str(folder / "holdout.npy"),
        n_holdout=len(held),
        plots={name: str(folder / Path(p).name) for name, p in plots.items()},
        runner_ups=clusterer.selection_.runner_ups(),
        cards_path=None,
    ), model


def finish_model(ctx: StageContext, swept: stages.Swept, model: ClusterModel) -> stages.Swept:
    """Concatenate labels, set the novelty threshold, keep the drift reference and the cards."""
    config, folder, n_valid = ctx.config, ctx.folder, ctx.n_valid
    labels = np.concatenate([np.load(p) for p in ctx.paths("labels", ".npy")])
    distance = np.concatenate([np.load(p) for p in ctx.paths("distance", ".npy")])
    if len(labels) != n_valid:
        raise ValidationFailed(
            f"row accounting broken: {n_valid} valid rows, {len(labels)} assigned",
            hint="report this as a bug",
        )
    if not (labels >= 0).any():
        raise NoViableClustering(
            "the chosen clustering put every row in noise",
            hint="use --noise assign or other algorithms",
        )
    model.novelty_threshold = float(np.quantile(distance, NOVELTY_QUANTILE)) * 1.0001
    model.quarantined_share = ctx.validated.schema_failure_share(config)
    model.missing_shares = stages.missing_shares(ctx.validated, config)
    model.save(folder / "model")
    np.save(folder / "labels.npy", labels)
    np.save(folder / "distance.npy", distance)
    # The drift reference: the same seeded rows as in-process, gathered from the partitions.
    rng = np.random.default_rng(config.random_state)
    pick = np.sort(rng.choice(n_valid, size=min(n_valid, stages.REFERENCE_ROWS), replace=False))
    table, emb = ctx.gather_features(pick)
    ref = table.reset_index(drop=True).copy()
    ref["__cluster"] = labels[pick]
    ref["__distance"] = distance[pick]
    ref["__novel"] = distance[pick] > model.novelty_threshold
    ref.to_parquet(folder / "model" / "reference.parquet", index=False)
    if emb is not None:
        np.save(folder / "model" / "reference_embeddings.npy", emb)
    cards_path = _cards(ctx, model, table, emb, labels[pick], pick)
    metrics = dict(swept.metrics)
    noise_share = float(np.mean(labels < 0))
    metrics["noise_share"] = noise_share
    return replace(swept, metrics=metrics, noise_share=noise_share, cards_path=cards_path)


def _cards(
    ctx: StageContext,
    model: ClusterModel,
    table: pd.DataFrame,
    emb: np.ndarray | None,
    labels: np.ndarray,
    pick: np.ndarray,
) -> str | None:
    """Write the cluster cards of the reference sample; None when they cannot be made."""
    roles, folder = ctx.roles, ctx.folder
    try:
        from clusterflow.cards import cards_markdown, cluster_cards

        X = model.features.transform(table, embeddings=emb)
        texts = None
        if roles.text_column:
            valid_ref = ctx.gather("valid", ".parquet", pick, columns=[roles.text_column])
            texts = valid_ref[roles.text_column].fillna("").astype(str).tolist()
        cards = cluster_cards(
            table.reset_index(drop=True),
            labels,
            texts=texts,
            features=X,
            centers=getattr(model.clusterer, "cluster_centers_", None),
        )
        (folder / "cards.md").write_text(cards_markdown(cards))
        (folder / "cards.json").write_text(json.dumps(cards, indent=2, default=str))
        return str(folder / "cards.md")
    except (ValueError, KeyError) as err:  # cards are a summary: never fail a run
        logger.warning("cluster cards on the reference sample failed: %s", err)
        return None
