"""Typed, frozen configuration: one model per flow, rendered by Prefect as the run form.

Nothing here reads the environment or touches files at import time; defaults are plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class ImputeMethod(StrEnum):
    """How gaps are filled: ``auto`` chooses by masking known values and scoring each imputer."""

    auto = "auto"
    mean = "mean"
    median = "median"
    most_frequent = "most_frequent"
    knn = "knn"
    iterative = "iterative"
    forest = "forest"
    drop = "drop"


class Algorithm(StrEnum):
    """Clustering algorithms the sweep may try."""

    kmeans = "kmeans"
    agglomerative = "agglomerative"
    hdbscan = "hdbscan"
    gmm = "gmm"


class NoisePolicy(StrEnum):
    """What happens to HDBSCAN's noise points: assigned to the nearest cluster, or kept as -1."""

    assign = "assign"
    keep = "keep"


class Precision(StrEnum):
    """Numeric precision of the text encoder on the CPU."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class EmbedBackend(StrEnum):
    """Which runtime computes the text vectors on the CPU."""

    auto = "auto"
    torch = "torch"
    openvino = "openvino"


class ImputeConfig(_Frozen):
    """How missing values are filled."""

    method: ImputeMethod = Field(
        ImputeMethod.auto,
        description="Imputer; 'auto' hides a share of known values and picks the imputer (or the "
        "average of two or three of knn, iterative and forest) that restores them best. 'drop' "
        "quarantines incomplete rows instead of filling them.",
    )
    n_neighbors: int = Field(5, ge=1, le=100, description="Donors per gap for the KNN imputer.")
    mask_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of known values hidden to score the imputers."
    )
    score_sample: int = Field(
        5000, ge=100, description="Rows used to score the imputers (selection stays cheap)."
    )


class EmbedConfig(_Frozen):
    """How the free-text column is turned into vectors."""

    model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: the bundled all-MiniLM-L6-v2, or a local folder.",
    )
    batch_size: int = Field(64, ge=1, le=1024, description="Texts per encoder batch.")
    precision: Precision = Field(
        Precision.auto,
        description="'auto' uses bfloat16 where the CPU supports it natively (about 1.5x faster, "
        "cosine to fp32 above 0.9999), else fp32.",
    )
    backend: EmbedBackend = Field(
        EmbedBackend.auto,
        description="'auto' uses OpenVINO where it is installed (faster, and steadier when other "
        "processes share the cores; converted once from the bundled weights), else torch.",
    )
    max_chars: int = Field(
        4000,
        ge=100,
        description="Texts are cut to this many characters before tokenising (the model reads "
        "256 word pieces at most, so longer texts only cost time).",
    )


TEXT_WEIGHT = 1.0
"""The text block's default weight: the numeric block's (text and measurements have equal say)."""
CATEGORICAL_WEIGHT = 0.2
"""The categorical block's default weight, chosen leave-one-dataset-out on the quality benchmark."""


class FeatureConfig(_Frozen):
    """How the text embedding and the tabular columns are combined."""

    text_weight: float | None = Field(
        None,
        ge=0,
        description="Weight of the text block against the tabular block (None: "
        f"{TEXT_WEIGHT:g}, the numeric block's weight).",
    )
    categorical_weight: float | None = Field(
        None,
        ge=0,
        description="Weight of the categorical block against the numeric block (None: "
        f"{CATEGORICAL_WEIGHT:g}, chosen on the quality benchmark; raise it when a category is "
        "known to carry the grouping, e.g. the app a post was sent from).",
    )
    max_categories: int = Field(
        30,
        ge=2,
        description="A text-valued column with more distinct values than this is not used as a "
        "category (it looks like an id or free text) and is reported as excluded.",
    )

    max_missing: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Columns with a larger share of missing values are not used as features "
        "(filling most of a column would invent the signal); they are reported as excluded.",
    )


class SweepConfig(_Frozen):
    """The search over clustering algorithms and cluster counts."""

    k_min: int = Field(2, ge=2, description="Smallest cluster count tried.")
    k_max: int | None = Field(
        None,
        ge=2,
        description="Largest cluster count tried (None: grows with the rows, see README).",
    )
    k: int | None = Field(
        None,
        ge=2,
        description="Pin the cluster count (the sweep then only chooses the algorithm); "
        "overrides the k range.",
    )
    algorithms: tuple[Algorithm, ...] = Field(
        (Algorithm.kmeans, Algorithm.agglomerative, Algorithm.hdbscan, Algorithm.gmm),
        min_length=1,
        description="Algorithms the sweep compares.",
    )
    noise: NoisePolicy = Field(
        NoisePolicy.assign,
        description="HDBSCAN noise: 'assign' to the nearest cluster, or 'keep' as cluster -1.",
    )
    silhouette_sample: int = Field(
        2000, ge=100, description="Rows sampled to compute the silhouette score."
    )
    stability_resamples: int = Field(
        6,
        ge=0,
        le=20,
        description="Subsample refits per candidate behind its stability and prediction "
        "strength (0: skip).",
    )
    fit_rows: int = Field(
        6000,
        ge=100,
        description="Above this many rows the sweep chooses the algorithm and k on a seeded sample "
        "of this size; every row is then assigned by the chosen model.",
    )

    @model_validator(mode="after")
    def _k_range(self) -> SweepConfig:
        if self.k_max is not None and self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) is below k_min ({self.k_min})")
        return self


class RegistryConfig(_Frozen):
    """Where the model is registered and when it becomes the champion."""

    model_name: str = Field(
        "clusterflow", min_length=1, description="Registered model name in MLflow."
    )
    experiment: str = Field("clusterflow", min_length=1, description="MLflow experiment name.")
    promote: bool = Field(
        True, description="Move the 'champion' alias when the challenger gate is passed."
    )
    eval_sample: int = Field(
        2000,
        ge=50,
        description="Most training rows held out for the gate (the challenger never sees them).",
    )
    holdout_share: float = Field(
        0.15,
        ge=0,
        le=0.5,
        description="Share of the valid rows held out for the gate (capped by eval_sample).",
    )
    bootstrap: int = Field(
        200,
        ge=20,
        le=5000,
        description="Bootstrap resamples of the held-out rows behind the gate's 95% interval.",
    )
    replace_incompatible: bool = Field(
        False,
        description="Replace a champion that cannot score the new data (other columns); "
        "otherwise the new version becomes 'challenger'. The drift-retrain trigger sets it.",
    )


class TrainConfig(_Frozen):
    """Everything one training run needs; the parameter form of the training flow."""

    data: str = Field(
        ..., description="Path of the input table: .csv, .csv.gz, .tsv, .parquet or .jsonl."
    )
    text_column: str | None = Field(
        None, description="Free-text column to embed (None: tabular only)."
    )
    id_column: str | None = Field(
        None, description="Row identifier column (None: the 0-based row number, named 'row')."
    )
    exclude_columns: tuple[str, ...] = Field(
        (), description="Columns never used as features (labels, free ids, timestamps)."
    )
    time_column: str | None = Field(
        None,
        description="Time of each row: the gate holds out the most recent rows (never a feature).",
    )
    out_dir: str | None = Field(
        None, description="Where this run's outputs go (None: ./clusterflow-runs/<run id>)."
    )
    workspace: str = Field(
        ".clusterflow",
        description="Folder for the stage cache, the embedding cache and the default MLflow store.",
    )
    random_state: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        0, description="Seed for every random choice (imputer masks, samples, clusterers)."
    )
    impute: ImputeConfig = Field(default_factory=ImputeConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    settings_from: str | None = Field(
        None,
        description="A registered model (models:/<name>@champion): train with the settings that "
        "model was trained with, on this config's data, workspace and out_dir. The drift-retrain "
        "trigger sets it to the model that drifted.",
    )

    def with_settings_of(self, recorded: Mapping[str, Any]) -> TrainConfig:
        """Return the recorded training config, on this config's data, workspace and out_dir.

        ``recorded`` is the ``config.json`` a training logged to its MLflow run. The columns and
        every stage's settings are the recorded ones (what the drifted model was trained with);
        whether an incompatible champion may be replaced stays this config's (the trigger asks
        for it). Fields this version no longer has (a config recorded by an older one) are
        left out; a missing one takes its default.

        Raises
        ------
        ConfigError
            When the recorded values are not a valid training config here.
        """
        from pydantic import ValidationError

        from clusterflow.errors import ConfigError

        known = _known_fields(TrainConfig, recorded)
        registry = dict(known.get("registry") or {})
        registry["replace_incompatible"] = self.registry.replace_incompatible
        try:
            return TrainConfig.model_validate(
                {
                    **known,
                    "data": self.data,
                    "workspace": self.workspace,
                    "out_dir": self.out_dir,
                    "registry": registry,
                    "settings_from": None,
                }
            )
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"settings_from {self.settings_from}: its recorded {where}: {first['msg']}",
                hint="retrain that model by hand with the settings wanted, or clear settings_from",
            ) from err

    @model_validator(mode="after")
    def _columns_disjoint(self) -> TrainConfig:
        special = {c for c in (self.text_column, self.id_column, self.time_column) if c}
        clash = special & set(self.exclude_columns)
        if clash:
            raise ValueError(f"columns {sorted(clash)} are both used and excluded")
        named = [c for c in (self.text_column, self.id_column, self.time_column) if c]
        if len(named) != len(set(named)):
            raise ValueError("the text, id and time columns must differ")
        return self


class DriftConfig(_Frozen):
    """When a batch counts as drifted (defaults: see the README's drift table)."""

    column_p_value: float = Field(
        0.01, gt=0, lt=1, description="Family-wise significance of the per-column tests (Holm)."
    )
    column_effect: float = Field(
        0.05, ge=0, le=1, description="Minimum KS D / total variation distance for a column."
    )
    text_auc: float = Field(
        0.65, ge=0.5, le=1, description="Domain-classifier ROC AUC above which the text drifted."
    )
    cluster_psi: float = Field(
        0.2, ge=0, description="PSI of the cluster proportions above which the mix drifted."
    )
    novelty_share: float = Field(
        0.05, ge=0, le=1, description="Increase of the novel-row share that counts as drift."
    )
    quarantine_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Increase of the share of rows failing validation (batch minus training) "
        "that counts as drift; tested like the novel share.",
    )
    min_columns: int = Field(1, ge=1, description="Drifted columns that make the batch drifted.")
    max_embedding_rows: int = Field(
        1000, ge=20, description="Rows per side sampled (seeded) for the text domain classifier."
    )
    cv_folds: int = Field(5, ge=2, description="Folds of the domain classifier's cross-validation.")
    psi_epsilon: float = Field(
        1e-4, gt=0, lt=0.5, description="Floor on a cluster's share in the PSI (no infinite index)."
    )


class ScoreConfig(_Frozen):
    """One batch-scoring run: assign clusters with a registered model."""

    data: str = Field(
        ..., description="Path of the table to score: .csv, .csv.gz, .tsv, .parquet or .jsonl."
    )
    out: str = Field(
        ..., description="Output CSV (a name ending in .csv): <id>,cluster for every input row."
    )
    model_uri: str = Field(
        "models:/clusterflow@champion", description="Registered model to use (models:/ or runs:/)."
    )
    id_column: str | None = Field(None, description="Row identifier (None: the model's, or row).")
    details: bool = Field(False, description="Also write the distance and novelty columns.")
    workspace: str = Field(".clusterflow", description="Embedding cache and default MLflow store.")

    @model_validator(mode="after")
    def _csv_out(self) -> ScoreConfig:
        # The partitioned run appends its parts' CSV text: another suffix would be a CSV
        # file under a misleading name (a ".parquet" that no Parquet reader opens).
        if not self.out.lower().endswith(".csv"):
            raise ValueError(f"out {self.out!r}: score writes CSV; give a name ending in .csv")
        return self


class MonitorConfig(_Frozen):
    """One monitoring run: drift of a new batch against the champion's reference."""

    data: str = Field(
        ..., description="Path of the new batch: .csv, .csv.gz, .tsv, .parquet or .jsonl."
    )
    out_dir: str | None = Field(
        None, description="Folder for drift.json and drift_report.html (None: ./clusterflow-runs/)."
    )
    model_uri: str = Field(
        "models:/clusterflow@champion",
        description="Model whose reference the batch is compared to.",
    )
    drift: DriftConfig = Field(default_factory=DriftConfig)
    emit_event: bool = Field(
        True,
        description="Emit 'clusterflow.drift.detected' when drift is found (starts retraining).",
    )
    workspace: str = Field(".clusterflow", description="Embedding cache and default MLflow store.")
    random_state: int = Field(
        0, ge=0, le=2**32 - 1, description="Seed of the samples and the domain classifier."
    )


def _known_fields(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the keys of ``values`` that are fields of ``model``, recursively for sub-models."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        sub = field.annotation
        nested = isinstance(sub, type) and issubclass(sub, BaseModel) and isinstance(value, Mapping)
        out[name] = _known_fields(sub, value) if nested else value  # type: ignore[arg-type]
    return out
