"""The sweep stage: build the feature matrix, sweep algorithms and k, assemble the model.

:func:`sweep` reads top-down: unless the store already holds the stage
(:meth:`~clusterflow.store.StageStore.cached`), :func:`_sweep_into` fits (:func:`_fit`, itself
features, choice, model), then writes (:func:`_write_outputs`, :func:`_sweep_meta`). The factories
:func:`make_features` and :func:`make_sweep` are shared with the partitioned path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.cluster.columns import SUMMARY_METRICS
from clusterflow.config import TrainConfig
from clusterflow.errors import ConfigError, NoViableClustering, ValidationFailed
from clusterflow.model import NOVELTY_QUANTILE, ClusterModel
from clusterflow.schema import ColumnRoles
from clusterflow.stages.artifacts import (
    missing_shares,
    write_cards,
    write_plots,
    write_reference,
)
from clusterflow.stages.embedding import embedder_spec
from clusterflow.stages.handles import Embedded, Imputed, Swept, Validated
from clusterflow.stages.imputation import load_imputer
from clusterflow.stages.sampling import holdout_settings, sweep_rows, train_fit_rows, training_rows
from clusterflow.store import StageStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Fitted:
    """What the sweep stage computed in memory, before anything is written."""

    table: pd.DataFrame
    embeddings: np.ndarray | None
    held: np.ndarray
    X: np.ndarray
    clusterer: Any
    labels: np.ndarray
    model: ClusterModel
    distance: np.ndarray
    results: pd.DataFrame
    imputer_path: Path | None  # the impute stage's file of model.imputer (copied, not rewritten)


def sweep(
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    config: TrainConfig,
    store: StageStore,
) -> Swept:
    """Build the feature matrix, sweep algorithms and k, and assemble the servable model."""
    settings = {
        "features": config.features.model_dump(mode="json"),
        "sweep": config.sweep.model_dump(mode="json"),
        "seed": config.random_state,
        "holdout": holdout_settings(config),
    }
    key = store.key("sweep", imputed.key, embedded.key if embedded else None, settings)
    compute = partial(_sweep_into, validated, imputed, embedded, config)
    return Swept(**store.cached("sweep", key, compute))


def make_features(roles: ColumnRoles, config: TrainConfig) -> Any:
    """Return the unfitted feature builder of a run (in-process and partitioned alike)."""
    from clusterflow.features import FeatureBuilder

    weights: dict[str, Any] = {
        name: value
        for name, value in (
            ("text_weight", config.features.text_weight),
            ("categorical_weight", config.features.categorical_weight),
        )
        if value is not None
    }
    return FeatureBuilder(
        numeric_columns=list(roles.numeric),
        categorical_columns=list(roles.categorical),
        random_state=config.random_state,
        **weights,
    )


def make_sweep(config: TrainConfig, n_rows: int, n_train: int) -> Any:
    """Return the unfitted sweep of a run over ``n_rows`` rows, ``n_train`` of them fitted on.

    The k range follows the size of the whole data, even when the sweep sees a sample of it;
    ``sweep.k`` pins it.
    """
    from clusterflow.sweep import ClusterSweep, default_k_max

    check_room(config, n_train)
    k_max = min(config.sweep.k_max or default_k_max(n_rows), n_train - 1)
    k_min = config.sweep.k_min
    if config.sweep.k is not None:
        k_min = k_max = config.sweep.k
    return ClusterSweep(
        k_min=k_min,
        k_max=k_max,
        algorithms=[a.value for a in config.sweep.algorithms],
        noise=config.sweep.noise.value,
        silhouette_sample=config.sweep.silhouette_sample,
        stability_resamples=config.sweep.stability_resamples,
        random_state=config.random_state,
    )


def check_room(config: TrainConfig, n_train: int) -> None:
    """Raise, naming the file and the option, when the rows cannot hold the asked clusters.

    Every k is at most ``n_train - 1`` (the silhouette needs a cluster with two rows), so
    clustering needs three rows.
    """
    name = Path(config.data).name
    if n_train < 3:
        raise ValidationFailed(
            f"{name}: only {n_train} valid rows to cluster; clustering needs at least 3",
            hint="give a file with more rows (rows that fail validation are quarantined)",
        )
    room = f"{name} has {n_train} rows to cluster, room for at most {n_train - 1} clusters"
    if config.sweep.k is not None and config.sweep.k > n_train - 1:
        raise ConfigError(f"--k {config.sweep.k}: {room}", hint="pin a smaller --k")
    if config.sweep.k is None and config.sweep.k_min > n_train - 1:
        raise ConfigError(f"--k-min {config.sweep.k_min}: {room}", hint="lower --k-min")


def chosen_metrics(results: pd.DataFrame) -> dict[str, float | None]:
    """Return the chosen candidate's :data:`SUMMARY_METRICS` from the sweep table."""
    chosen = results[results["selected"]].iloc[0].to_dict() if "selected" in results else {}
    return {
        k: (None if pd.isna(chosen[k]) else float(chosen[k]))
        for k in SUMMARY_METRICS
        if k in chosen and isinstance(chosen[k], (int, float, np.number))
    }


def _sweep_into(
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    config: TrainConfig,
    tmp: Path,
    folder: Path,
) -> dict[str, Any]:
    """Fit the sweep and the model; write them and what is kept beside them into ``tmp``.

    Return the fields of the :class:`Swept` handle but its key; the paths name ``folder``.
    """
    fitted = _fit(validated, imputed, embedded, config)
    plots, cards_path = _write_outputs(tmp, fitted, validated, config)
    return _sweep_meta(folder, fitted, plots, cards_path)


def _fit(
    validated: Validated, imputed: Imputed, embedded: Embedded | None, config: TrainConfig
) -> _Fitted:
    """Fit the features, choose the clustering and assemble the model, all in memory."""
    roles = validated.column_roles
    table = pd.read_parquet(imputed.path)
    embeddings = np.load(embedded.path) if embedded else None
    n_rows = len(table)
    check_room(config, n_rows)
    # The gate's held-out rows are assigned like new data: the imputer, the features and the
    # clusterer are fitted without them.
    held, train = training_rows(validated, config)
    builder, X = _build_features(roles, table, embeddings, train, config)
    clusterer, labels = _choose_clustering(X, n_rows, train, len(held), config)
    model = ClusterModel(
        roles=roles,
        imputer=load_imputer(imputed),
        features=builder,
        clusterer=clusterer,
        embedder=embedder_spec(config) if embedded else None,
        quarantined_share=validated.schema_failure_share(config),
        missing_shares=missing_shares(validated, config),
    )
    distance = _check_and_calibrate(model, X, labels)
    return _Fitted(
        table=table,
        embeddings=embeddings,
        held=held,
        X=X,
        clusterer=clusterer,
        labels=labels,
        model=model,
        distance=distance,
        results=clusterer.results_.copy(),
        imputer_path=Path(imputed.imputer_path) if imputed.imputer_format == "skops" else None,
    )


def _build_features(
    roles: ColumnRoles,
    table: pd.DataFrame,
    embeddings: np.ndarray | None,
    train: np.ndarray,
    config: TrainConfig,
) -> tuple[Any, np.ndarray]:
    """Fit the feature builder on the training rows; return it and every row's features."""
    fit_on = train_fit_rows(train, len(table), config.random_state)
    builder = make_features(roles, config)
    builder.fit(
        table.iloc[fit_on] if fit_on is not None else table,
        embeddings=None if embeddings is None or fit_on is None else embeddings[fit_on],
    )
    return builder, builder.transform(table, embeddings=embeddings)


def _choose_clustering(
    X: np.ndarray, n_rows: int, train: np.ndarray, n_held: int, config: TrainConfig
) -> tuple[Any, np.ndarray]:
    """Fit the sweep on the training rows (a seeded sample of them above ``sweep.fit_rows``).

    Return the fitted sweep and every row's label.
    """
    clusterer = make_sweep(config, n_rows, len(train))
    started = time.perf_counter()
    sample = sweep_rows(len(train), config.sweep.fit_rows, config.random_state)
    fit_rows = train if sample is None else train[sample]
    everything = len(fit_rows) == n_rows
    clusterer.fit(X if everything else X[fit_rows])
    # Above fit_rows the sweep chooses on a seeded sample and every row is assigned by the chosen
    # model's own predict, which is exactly what the registered model will do with new rows (and
    # what it does with the held-out rows).
    labels = np.asarray(clusterer.labels_ if everything else clusterer.predict(X), dtype=int)
    logger.info(
        "sweep fitted in %.1fs on %d of %d rows (%d held out for the gate): %s k=%s",
        time.perf_counter() - started,
        len(fit_rows),
        n_rows,
        n_held,
        clusterer.algorithm_,
        clusterer.k_,
    )
    if len(set(labels[labels >= 0].tolist())) < 1:
        raise NoViableClustering(
            "the chosen clustering put every row in noise",
            hint="use --noise assign or other algorithms",
        )
    return clusterer, labels


def _check_and_calibrate(model: ClusterModel, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Check the model reproduces the training labels; set its novelty threshold.

    Return every row's distance to its cluster.
    """
    assigned, distance = model.assign(X)
    if not np.array_equal(assigned, labels):
        raise NoViableClustering(
            "the chosen clusterer does not reproduce its own training labels",
            hint="report this as a bug with the data's shape and the config",
        )
    model.novelty_threshold = float(np.quantile(distance, NOVELTY_QUANTILE)) * 1.0001
    return distance


def _write_outputs(
    tmp: Path, fitted: _Fitted, validated: Validated, config: TrainConfig
) -> tuple[dict[str, str], str | None]:
    """Write the model, labels, held-out rows, distances, table, reference, plots and cards.

    Return the plots' paths by name and the cards' path.
    """
    written = {"imputer": fitted.imputer_path} if fitted.imputer_path else None
    fitted.model.save(tmp / "model", written=written)
    np.save(tmp / "labels.npy", fitted.labels)
    np.save(tmp / "holdout.npy", fitted.held)
    np.save(tmp / "distance.npy", fitted.distance)
    fitted.results.to_csv(tmp / "sweep.csv", index=False)
    write_reference(
        tmp / "model",
        fitted.table,
        fitted.embeddings,
        fitted.labels,
        fitted.distance,
        fitted.model,
        config,
    )
    plots = write_plots(tmp, fitted.results, fitted.X, fitted.labels, config)
    cards_path = write_cards(
        tmp,
        validated,
        fitted.table,
        fitted.labels,
        fitted.X,
        fitted.clusterer,
        validated.column_roles,
    )
    return plots, cards_path


def _sweep_meta(
    folder: Path, fitted: _Fitted, plots: dict[str, str], cards_path: str | None
) -> dict[str, Any]:
    """Return the fields of the :class:`Swept` handle but its key, as written to ``meta.json``."""
    clusterer = fitted.clusterer
    noise_share = float(np.mean(fitted.labels < 0))
    metrics: dict[str, float | None] = chosen_metrics(fitted.results)
    metrics["noise_share"] = noise_share
    return {
        "model_dir": str(folder / "model"),
        "labels_path": str(folder / "labels.npy"),
        "results_path": str(folder / "sweep.csv"),
        "algorithm": str(clusterer.algorithm_),
        "k": int(clusterer.k_),
        "metrics": metrics,
        "rule": str(getattr(clusterer, "rule_", "")),
        "disagreement": str(getattr(clusterer, "disagreement_", "") or ""),
        "runner_ups": clusterer.selection_.runner_ups(),
        "noise_share": noise_share,
        "holdout_path": str(folder / "holdout.npy"),
        "n_holdout": len(fitted.held),
        "plots": {name: str(folder / Path(p).name) for name, p in plots.items()},
        "cards_path": str(folder / "cards.md") if cards_path else None,
    }
