"""FeatureBuilder: block weighting, zero text rows, errors, and the penguins encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from clusterflow.errors import ConfigError, ValidationFailed
from clusterflow.features import FeatureBuilder
from tests.conftest import shared

MEASUREMENTS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "a": rng.normal(0, 1, n),
            "b": rng.normal(100, 30, n),
            "c": rng.normal(5, 0.1, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "flag": rng.choice(["y", "n"], n),
        }
    )


def block_variance(X: np.ndarray, block: slice) -> float:
    return float(X[:, block].var(axis=0).sum())


def test_each_block_counts_by_its_weight_not_its_width(table) -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(len(table), 32))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    fb = FeatureBuilder(
        numeric_columns=["a", "b", "c"],
        categorical_columns=["colour", "flag"],
        text_weight=2.0,
        categorical_weight=0.25,
    )
    X = fb.fit_transform(table, embeddings=emb)
    assert X.dtype == np.float32 and X.shape == (len(table), 32 + 3 + 5)
    assert block_variance(X, fb.blocks_["text"]) == pytest.approx(2.0, rel=1e-4)
    assert block_variance(X, fb.blocks_["numeric"]) == pytest.approx(1.0, rel=1e-4)
    assert block_variance(X, fb.blocks_["categorical"]) == pytest.approx(0.25, rel=1e-4)
    assert fb.weights_ == {"text": 2.0, "numeric": 1.0, "categorical": 0.25}
    assert list(fb.get_feature_names_out()[32:35]) == ["a", "b", "c"]
    # One wide numeric column set weighs what a single column would.
    one = FeatureBuilder(numeric_columns=["a"]).fit_transform(table)
    assert block_variance(one, slice(0, 1)) == pytest.approx(1.0, rel=1e-4)


def test_zero_text_rows_stay_zero_and_do_not_set_the_scale(table) -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(len(table), 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    with_gaps = emb.copy()
    with_gaps[:10] = 0.0
    fb = FeatureBuilder(numeric_columns=["a"]).fit(table, embeddings=with_gaps)
    X = fb.transform(table, embeddings=with_gaps)
    assert np.all(X[:10, fb.blocks_["text"]] == 0.0)
    ref = FeatureBuilder(numeric_columns=["a"]).fit(table.iloc[10:], embeddings=emb[10:])
    assert fb.scale_["text"] == pytest.approx(ref.scale_["text"], rel=1e-6)


def test_transform_does_not_mutate_and_handles_unseen_category(table) -> None:
    fb = FeatureBuilder(numeric_columns=["a", "b"], categorical_columns=["colour"]).fit(table)
    new = table.head(3).copy()
    new.loc[0, "colour"] = "purple"
    before = new.copy()
    X = fb.transform(new)
    pd.testing.assert_frame_equal(new, before)
    assert np.all(X[0, fb.blocks_["categorical"]] == 0.0)


def test_pca_option_reduces(table) -> None:
    fb = FeatureBuilder(
        numeric_columns=["a", "b", "c"], categorical_columns=["colour"], n_components=2
    )
    X = fb.fit_transform(table)
    assert X.shape == (len(table), 2)
    assert list(fb.get_feature_names_out()) == ["pca0", "pca1"]


def test_errors(table) -> None:
    with pytest.raises(ConfigError, match="not in the table"):
        FeatureBuilder(numeric_columns=["nope"]).fit(table)
    gappy = table.copy()
    gappy.loc[3, "a"] = np.nan
    with pytest.raises(ValidationFailed, match="missing values"):
        FeatureBuilder(numeric_columns=["a"]).fit(gappy)
    with pytest.raises(ConfigError, match=r"expected \(n_rows=60"):
        FeatureBuilder(numeric_columns=["a"]).fit(table, embeddings=np.zeros((5, 4)))
    with pytest.raises(ConfigError, match="no features"):
        FeatureBuilder().fit(table)
    fb = FeatureBuilder(numeric_columns=["a"]).fit(table, embeddings=np.ones((60, 4)) / 2)
    with pytest.raises(ConfigError, match="needs them too"):
        fb.transform(table)


def test_low_categorical_weight_keeps_penguin_species_together() -> None:
    df = pd.read_csv(shared("penguins.csv")).dropna().reset_index(drop=True)

    def ari(weight: float) -> float:
        X = FeatureBuilder(
            numeric_columns=MEASUREMENTS,
            categorical_columns=["island", "sex"],
            categorical_weight=weight,
        ).fit_transform(df)
        labels = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(X)
        return adjusted_rand_score(df["species"], labels)

    default = FeatureBuilder().categorical_weight
    assert ari(default) > ari(1.0)


def test_heavy_tailed_counts_are_log_scaled_and_do_not_own_the_distance() -> None:
    """Issue 11's tweets case: counts spanning five orders of magnitude, a source that matters."""
    rng = np.random.default_rng(0)
    n = 400
    source = rng.choice(["android", "iphone"], size=n)
    counts = np.round(10 ** rng.uniform(0, 5, size=n) * rng.pareto(1.5, size=n)) + 1
    table = pd.DataFrame({"retweets": counts, "length": rng.normal(100, 10, n), "source": source})
    auto = FeatureBuilder(
        numeric_columns=["retweets", "length"], categorical_columns=["source"]
    ).fit(table)
    assert auto.transforms_["retweets"]["transform"] == "log1p"
    assert auto.transforms_["retweets"]["skew_after"] < auto.transforms_["retweets"]["skew_before"]
    assert auto.transforms_["length"]["transform"] == "none"
    raw = FeatureBuilder(
        numeric_columns=["retweets", "length"], categorical_columns=["source"], tails="none"
    ).fit(table)

    def top_share(builder: FeatureBuilder) -> float:
        # Share of the numeric block's squared distance carried by the 1 % most extreme rows.
        block = builder.transform(table)[:, builder.blocks_["numeric"]]
        d2 = ((block - block.mean(axis=0)) ** 2).sum(axis=1)
        return float(np.sort(d2)[-n // 100 :].sum() / d2.sum())

    assert top_share(auto) < 0.5 * top_share(raw)
    # Negative heavy tails take Yeo-Johnson; unknown options are refused.
    table["debt"] = -counts
    yj = FeatureBuilder(numeric_columns=["debt"]).fit(table)
    assert yj.transforms_["debt"]["transform"] == "yeo-johnson"
    assert np.isfinite(yj.transform(table)).all()
    with pytest.raises(ConfigError, match="tails must be"):
        FeatureBuilder(numeric_columns=["length"], tails="log").fit(table)
