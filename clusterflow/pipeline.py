"""The training stages as plain functions over small handles (paths and hashes), no Prefect.

Every stage reads its inputs from files, writes its outputs into the :class:`StageStore` under a
key that hashes its inputs and settings, and returns a small frozen handle. A stage whose key is
already complete is not computed again, so a rerun on the same data and settings (or a run resumed
after a crash) only redoes what is missing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clusterflow.config import ImputeMethod, TrainConfig
from clusterflow.embed import embed_column, model_identity, resolve_backend
from clusterflow.errors import ConfigError, NoViableClustering, ValidationFailed
from clusterflow.io import fingerprint, read_table, write_parquet
from clusterflow.model import (
    NOVELTY_QUANTILE,
    ClusterModel,
    EmbedderSpec,
    dump_component,
    load_component,
)
from clusterflow.schema import ColumnRoles, infer_roles, post_impute_schema, validate_records
from clusterflow.store import StageStore

logger = logging.getLogger(__name__)
ProgressFn = Callable[[int, int], None]

SUMMARY_METRICS = (
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "inertia",
    "bic",
    "stability",
)
"""The chosen candidate's scores reported in summary.json (the sweep table has them all)."""

REFERENCE_ROWS = 5000
"""Rows of the training data kept with the model as the drift reference."""

FIT_ROWS = 100_000
"""Above this many valid rows the imputer and the feature builder fit on a seeded sample of this
size (then transform every row). Below it they see every row. A Dask run gathers exactly this
sample to its driver, so both ways give the same model (see :mod:`clusterflow.partitioned`)."""


@dataclass(frozen=True)
class Snapshot:
    """The ingested table, as read, keyed by the file's content hash."""

    source: str
    fingerprint: str
    path: str
    n_rows: int
    columns: tuple[str, ...]
    reused: bool = False


@dataclass(frozen=True)
class Validated:
    """Rows that passed validation, and the quarantined ones with their reasons."""

    key: str
    valid_path: str
    quarantine_path: str
    roles: dict
    n_valid: int
    n_quarantined: int
    reused: bool = False

    @property
    def column_roles(self) -> ColumnRoles:
        """The roles as an object."""
        return ColumnRoles.from_dict(self.roles)


@dataclass(frozen=True)
class Imputed:
    """The valid rows' tabular features with every gap filled, and the fitted imputer."""

    key: str
    path: str
    imputer_path: str
    imputer_format: str
    method: str
    scores: list[dict]
    missing_cells: int
    profile: dict = field(default_factory=dict)
    plot_path: str | None = None
    reused: bool = False
    column_scores: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Embedded:
    """Text vectors of the valid rows (zero rows where text is empty)."""

    key: str
    path: str
    model_id: str
    n_texts: int
    n_unique: int
    n_with_text: int
    reused: bool = False


@dataclass(frozen=True)
class Swept:
    """The sweep's outcome: the fitted model, the labels of the valid rows and the sweep table."""

    key: str
    model_dir: str
    labels_path: str
    results_path: str
    algorithm: str
    k: int
    metrics: dict
    rule: str
    disagreement: str
    noise_share: float
    holdout_path: str = ""
    n_holdout: int = 0
    plots: dict = field(default_factory=dict)
    runner_ups: list = field(default_factory=list)
    cards_path: str | None = None
    reused: bool = False

    def holdout(self) -> np.ndarray:
        """Positions (among the valid rows) of the rows held out for the gate."""
        if not self.holdout_path:
            return np.empty(0, dtype=int)
        return np.load(self.holdout_path)


def _sanitise_for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed Python types become text (Arrow cannot store them mixed)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = out[column]
            out[column] = values.where(values.isna(), values.astype(str))
    return out


def ingest(data: str | Path, store: StageStore) -> Snapshot:
    """Read the input file into a typed snapshot stored under its content hash.

    Raises
    ------
    InputError
        If the file cannot be read as a table (see :func:`clusterflow.io.read_table`).
    """
    path = Path(data)
    frame = read_table(path)  # raises the clear errors before anything is hashed or stored
    digest = fingerprint(path)
    key = store.key("ingest", digest)
    target = store.path("ingest", key) / "rows.parquet"
    reused = store.done("ingest", key)
    if not reused:
        with store.writing("ingest", key) as tmp:
            _sanitise_for_parquet(frame).to_parquet(tmp / "rows.parquet", index=True)
    return Snapshot(
        source=str(path),
        fingerprint=digest,
        path=str(target),
        n_rows=len(frame),
        columns=tuple(frame.columns),
        reused=reused,
    )


def _excluded(config: TrainConfig) -> tuple[str, ...]:
    """Columns never used as features: the excluded ones and the time column."""
    time = (config.time_column,) if config.time_column else ()
    return tuple(dict.fromkeys((*config.exclude_columns, *time)))


def validate(snapshot: Snapshot, config: TrainConfig, store: StageStore) -> Validated:
    """Infer column roles and validate lazily; quarantine failing rows with their reasons.

    With ``impute.method == "drop"`` rows with gaps in a feature are quarantined too (the user
    asked for it), each with the columns that were empty.
    """
    settings = {
        "text": config.text_column,
        "id": config.id_column,
        "exclude": _excluded(config),
        "max_categories": config.features.max_categories,
        "max_missing": config.features.max_missing,
        "drop": config.impute.method == "drop",
        "max_chars": config.embed.max_chars,
    }
    key = store.key("validate", snapshot.fingerprint, settings)
    folder = store.path("validate", key)
    if store.done("validate", key):
        meta = json.loads((folder / "meta.json").read_text())
        return Validated(**meta, reused=True)

    frame = pd.read_parquet(snapshot.path)
    source = Path(snapshot.source).name
    roles = infer_roles(
        frame,
        text_column=config.text_column,
        id_column=config.id_column,
        exclude_columns=_excluded(config),
        max_categories=config.features.max_categories,
        max_missing=config.features.max_missing,
        source=source,
    )
    if roles.text_column and frame[roles.text_column].dropna().astype(str).str.strip().eq("").all():
        raise ValidationFailed(
            f"{source}: the text column {roles.text_column!r} is empty in every row",
            hint="choose another --text-column or omit it for tabular data",
        )
    outcome = validate_records(frame, roles, max_text_chars=1_000_000, source=source)
    reasons = dict(outcome.reasons)
    valid = outcome.valid
    if config.impute.method == ImputeMethod.drop and roles.features:
        gaps = valid[list(roles.features)].isna()
        incomplete = gaps.any(axis=1)
        for row in valid.index[incomplete]:
            empty = ", ".join(gaps.columns[gaps.loc[row]])
            reasons[int(row)] = f"gaps in {empty} (impute=drop was asked)"
        valid = valid.loc[~incomplete]
        if valid.empty:
            raise ValidationFailed(
                f"{source}: every row has a gap and impute=drop was asked",
                hint="use an imputer (the default 'auto') instead of dropping rows",
            )
    quarantine = pd.DataFrame(
        {"row": list(reasons.keys()), "reason": list(reasons.values())}
    ).sort_values("row")
    meta = {
        "key": key,
        "valid_path": str(folder / "valid.parquet"),
        "quarantine_path": str(folder / "quarantine.parquet"),
        "roles": roles.to_dict(),
        "n_valid": len(valid),
        "n_quarantined": len(quarantine),
    }
    with store.writing("validate", key) as tmp:
        _sanitise_for_parquet(valid).to_parquet(tmp / "valid.parquet", index=True)
        quarantine.to_parquet(tmp / "quarantine.parquet", index=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    logger.info(
        "validated %d rows: %d valid, %d quarantined", snapshot.n_rows, len(valid), len(quarantine)
    )
    return Validated(**meta)


def impute(validated: Validated, config: TrainConfig, store: StageStore) -> Imputed:
    """Fit the imputer on the valid rows (choosing it by mask-and-score) and fill every gap."""
    roles = validated.column_roles
    settings = config.impute.model_dump(mode="json")
    key = store.key("impute", validated.key, settings, config.random_state)
    folder = store.path("impute", key)
    if store.done("impute", key):
        meta = json.loads((folder / "meta.json").read_text())
        return Imputed(**meta, reused=True)

    table = pd.read_parquet(validated.valid_path, columns=list(roles.features))
    table = table.astype({c: float for c in roles.numeric})
    missing_cells = int(table.isna().sum().sum())
    method = "auto" if config.impute.method == ImputeMethod.drop else config.impute.method.value
    imputer = None
    scores: list[dict] = []
    column_scores: list[dict] = []
    profile: dict = {}
    with store.writing("impute", key) as tmp:
        plot_path = None
        if roles.features:
            if missing_cells:
                from clusterflow.missingness import plot_missingness, profile_missingness

                prof = profile_missingness(table, random_state=config.random_state)
                profile = prof.to_dict()
                (tmp / "missingness.md").write_text(prof.to_markdown())
                plot_missingness(table, tmp / "missingness.png")
                plot_path = str(folder / "missingness.png")
            imputer = make_imputer(method, roles, config)
            fit_on = fit_sample(len(table), FIT_ROWS, config.random_state)
            imputer.fit(table if fit_on is None else table.iloc[fit_on])
            filled = imputer.transform(table)
            method = imputer.method_
            scores = (
                json.loads(imputer.scores_.to_json(orient="records"))
                if hasattr(imputer, "scores_") and imputer.scores_ is not None
                else []
            )
            column_scores = json.loads(imputer.column_scores_.to_json(orient="records"))
            categories = getattr(imputer, "categories_", None)
            post_impute_schema(roles, categories).validate(filled, lazy=True)
        else:
            filled = table
        write_parquet(filled, tmp / "imputed.parquet")

        meta = {
            "key": key,
            "path": str(folder / "imputed.parquet"),
            "imputer_path": str(folder / "imputer"),
            "imputer_format": dump_component(imputer, tmp / "imputer"),
            "method": method,
            "scores": scores,
            "column_scores": column_scores,
            "missing_cells": missing_cells,
            "profile": profile,
            "plot_path": plot_path,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return Imputed(**meta)


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


def make_imputer(method: str, roles: ColumnRoles, config: TrainConfig) -> Any:
    """Return the unfitted imputer of a run (in-process and partitioned alike)."""
    from clusterflow.impute import TableImputer

    return TableImputer(
        method=method,
        numeric_columns=list(roles.numeric),
        categorical_columns=list(roles.categorical),
        n_neighbors=config.impute.n_neighbors,
        mask_fraction=config.impute.mask_fraction,
        score_sample=config.impute.score_sample,
        random_state=config.random_state,
    )


def load_imputer(imputed: Imputed):
    """Read the fitted imputer of an :class:`Imputed` handle."""
    return load_component(Path(imputed.imputer_path), imputed.imputer_format)


def embedder_spec(config: TrainConfig) -> EmbedderSpec:
    """Return the embedder settings a model records (and rebuilds at serving time)."""
    return EmbedderSpec(
        model=config.embed.model,
        precision=config.embed.precision.value,
        max_chars=config.embed.max_chars,
        batch_size=config.embed.batch_size,
        backend=resolve_backend(config.embed.backend.value),
    )


def embed(
    validated: Validated,
    config: TrainConfig,
    store: StageStore,
    *,
    progress: ProgressFn | None = None,
) -> Embedded | None:
    """Embed the text column of the valid rows (None when the data has no text column)."""
    roles = validated.column_roles
    if not roles.text_column:
        return None
    spec = embedder_spec(config)
    embedder = spec.build(
        cache_path=Path(config.workspace) / "embeddings.sqlite", progress=progress
    )
    key = store.key(
        "embed", validated.key, embedder.model_id, model_identity(spec.model), spec.max_chars
    )
    folder = store.path("embed", key)
    if store.done("embed", key):
        meta = json.loads((folder / "meta.json").read_text())
        return Embedded(**meta, reused=True)
    texts = pd.read_parquet(validated.valid_path, columns=[roles.text_column])[roles.text_column]
    vectors, has_text = embed_column(embedder, texts.tolist())
    stats = embedder.last_stats
    meta = {
        "key": key,
        "path": str(folder / "embeddings.npy"),
        "model_id": embedder.model_id,
        "n_texts": int(has_text.sum()),
        "n_unique": int(stats.get("unique", 0)),
        "n_with_text": int(has_text.sum()),
    }
    with store.writing("embed", key) as tmp:
        np.save(tmp / "embeddings.npy", vectors)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return Embedded(**meta)


def sweep(
    validated: Validated,
    imputed: Imputed,
    embedded: Embedded | None,
    config: TrainConfig,
    store: StageStore,
) -> Swept:
    """Build the feature matrix, sweep algorithms and k, and assemble the servable model."""
    roles = validated.column_roles
    settings = {
        "features": config.features.model_dump(mode="json"),
        "sweep": config.sweep.model_dump(mode="json"),
        "seed": config.random_state,
        "holdout": _holdout_settings(config),
    }
    key = store.key("sweep", imputed.key, embedded.key if embedded else None, settings)
    folder = store.path("sweep", key)
    if store.done("sweep", key):
        meta = json.loads((folder / "meta.json").read_text())
        return Swept(**meta, reused=True)

    table = pd.read_parquet(imputed.path)
    embeddings = np.load(embedded.path) if embedded else None
    n_rows = len(table)
    if n_rows < config.sweep.k_min:
        raise ConfigError(
            f"{Path(config.data).name}: only {n_rows} valid rows, fewer than "
            f"k_min={config.sweep.k_min}",
            hint="give more rows or lower --k-min",
        )
    # The gate's held-out rows are assigned like new data: the features and the clusterer are
    # fitted without them.
    held = holdout_rows(validated, config)
    train = np.setdiff1d(np.arange(n_rows), held)
    fit_on = features_fit_rows(train, n_rows, config.random_state)
    builder = make_features(roles, config)
    builder.fit(
        table.iloc[fit_on] if fit_on is not None else table,
        embeddings=None if embeddings is None or fit_on is None else embeddings[fit_on],
    )
    X = builder.transform(table, embeddings=embeddings)
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
        len(held),
        clusterer.algorithm_,
        clusterer.k_,
    )
    if len(set(labels[labels >= 0].tolist())) < 1:
        raise NoViableClustering(
            "the chosen clustering put every row in noise",
            hint="use --noise assign or other algorithms",
        )

    model = ClusterModel(
        roles=roles,
        imputer=load_imputer(imputed),
        features=builder,
        clusterer=clusterer,
        embedder=embedder_spec(config) if embedded else None,
    )
    assigned, distance = model.assign(X)
    if not np.array_equal(assigned, labels):
        raise NoViableClustering(
            "the chosen clusterer does not reproduce its own training labels",
            hint="report this as a bug with the data's shape and the config",
        )
    model.novelty_threshold = float(np.quantile(distance, NOVELTY_QUANTILE)) * 1.0001

    results = clusterer.results_.copy()
    chosen = results[results["selected"]].iloc[0].to_dict() if "selected" in results else {}
    metrics = {
        k: (None if pd.isna(chosen[k]) else float(chosen[k]))
        for k in SUMMARY_METRICS
        if k in chosen and isinstance(chosen[k], (int, float, np.number))
    }
    noise_share = float(np.mean(labels < 0))
    metrics["noise_share"] = noise_share
    with store.writing("sweep", key) as tmp:
        model.save(tmp / "model")
        np.save(tmp / "labels.npy", labels)
        np.save(tmp / "holdout.npy", held)
        np.save(tmp / "distance.npy", distance)
        results.to_csv(tmp / "sweep.csv", index=False)
        _write_reference(tmp / "model", table, embeddings, labels, distance, model, config)
        plots = _plots(tmp, results, X, labels, config)
        cards_path = _cards(tmp, validated, table, labels, X, clusterer, roles)
        meta = {
            "key": key,
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
            "n_holdout": len(held),
            "plots": {name: str(folder / Path(p).name) for name, p in plots.items()},
            "cards_path": str(folder / "cards.md") if cards_path else None,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return Swept(**meta)


def _holdout_settings(config: TrainConfig) -> dict:
    return {
        "share": config.registry.holdout_share,
        "max_rows": config.registry.eval_sample,
        "time": config.time_column,
    }


def holdout_rows(validated: Validated, config: TrainConfig) -> np.ndarray:
    """Return the positions (among the valid rows) held out for the gate.

    See :func:`clusterflow.gate.holdout_positions`.
    """
    from clusterflow.gate import holdout_positions

    times = None
    if config.time_column:
        times = pd.read_parquet(validated.valid_path, columns=[config.time_column])
        times = times[config.time_column]
    return holdout_positions(
        validated.n_valid,
        share=config.registry.holdout_share,
        max_rows=config.registry.eval_sample,
        random_state=config.random_state,
        times=times,
    )


def features_fit_rows(train: np.ndarray, n_rows: int, random_state: int) -> np.ndarray | None:
    """Return the rows the feature builder is fitted on (None: every row).

    The training rows (every row but the gate's held-out ones), down to a seeded sample of
    :data:`FIT_ROWS` of them; the partitioned path gathers the same rows.
    """
    sample = fit_sample(len(train), FIT_ROWS, random_state)
    rows = train if sample is None else train[sample]
    return None if len(rows) == n_rows else rows


def fit_sample(n_rows: int, limit: int, random_state: int) -> np.ndarray | None:
    """Return the sorted positions of a seeded sample of ``limit`` rows, or None for all rows."""
    if n_rows <= limit:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_rows, size=limit, replace=False))


def sweep_rows(n_rows: int, fit_rows: int, random_state: int) -> np.ndarray | None:
    """Return the sorted positions the sweep fits on, or None for all rows."""
    return fit_sample(n_rows, fit_rows, random_state)


def _write_reference(
    folder: Path,
    table: pd.DataFrame,
    embeddings: np.ndarray | None,
    labels: np.ndarray,
    distance: np.ndarray,
    model: ClusterModel,
    config: TrainConfig,
) -> None:
    """Keep a seeded sample of the training rows with the model: the drift reference."""
    rng = np.random.default_rng(config.random_state)
    n = len(table)
    pick = np.sort(rng.choice(n, size=min(n, REFERENCE_ROWS), replace=False))
    ref = table.iloc[pick].reset_index(drop=True).copy()
    ref["__cluster"] = labels[pick]
    ref["__distance"] = distance[pick]
    ref["__novel"] = distance[pick] > model.novelty_threshold
    ref.to_parquet(folder / "reference.parquet", index=False)
    if embeddings is not None:
        np.save(folder / "reference_embeddings.npy", embeddings[pick])


def _plots(
    folder: Path, results: pd.DataFrame, X: np.ndarray, labels: np.ndarray, config: TrainConfig
) -> dict[str, str]:
    from clusterflow.plots import plot_cluster_map, plot_sweep

    out = {}
    try:
        out["sweep"] = str(plot_sweep(results, folder / "sweep.png"))
        out["cluster_map"] = str(
            plot_cluster_map(
                X, labels, folder / "cluster_map.png", random_state=config.random_state
            )
        )
    except (ValueError, RuntimeError) as err:  # a plot must never fail a training run
        logger.warning("plotting failed: %s", err)
    return out


def _cards(
    folder: Path,
    validated: Validated,
    table: pd.DataFrame,
    labels: np.ndarray,
    X: np.ndarray,
    clusterer,
    roles: ColumnRoles,
) -> str | None:
    from clusterflow.cards import cards_markdown, cluster_cards

    texts = None
    if roles.text_column:
        texts = pd.read_parquet(validated.valid_path, columns=[roles.text_column])[
            roles.text_column
        ]
        texts = texts.fillna("").astype(str).tolist()
    cards = cluster_cards(
        table, labels, texts=texts, features=X, centers=getattr(clusterer, "cluster_centers_", None)
    )
    (folder / "cards.md").write_text(cards_markdown(cards))
    (folder / "cards.json").write_text(json.dumps(cards, indent=2, default=str))
    return str(folder / "cards.md")


def handle_dict(handle) -> dict:
    """Return a JSON-safe view of a stage handle (for logs and summaries)."""
    return asdict(handle)
