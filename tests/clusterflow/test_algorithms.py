"""The clustering families behind the sweep: one protocol, each family on its own."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clusterflow.cluster.algorithms import FAMILIES, Candidate, Space, Subsample
from clusterflow.cluster.evidence import Reducer
from clusterflow.cluster.sweep import ALGORITHMS, ClusterSweep
from clusterflow.config import Algorithm as AlgorithmOption
from clusterflow.model import dump_component, load_component


@pytest.fixture(scope="module")
def space() -> tuple[Space, np.ndarray]:
    X, y = make_blobs(n_samples=240, centers=4, cluster_std=0.5, random_state=2)
    X = X.astype(np.float32)
    reducer = Reducer(X, random_state=0)
    return Space(X=X, reducer=reducer, Z=reducer.transform(X), random_state=0), y


def test_families_are_the_config_options() -> None:
    assert ALGORITHMS == tuple(FAMILIES)
    assert set(ALGORITHMS) == {a.value for a in AlgorithmOption}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_fits_refits_and_describes_itself(name, space) -> None:
    space, y = space
    family = FAMILIES[name]()
    assert family.name == name
    grid = family.grid(len(space.X), [2, 3, 4, 5, 6])
    assert grid == sorted(grid) and len(grid) >= 2
    family.prepare(space, np.random.default_rng(0))
    # HDBSCAN's parameter is a minimum cluster size: the smallest of its grid finds the blobs.
    model, noise = family.fit(space, 4 if name != "hdbscan" else grid[0])
    assert isinstance(model, Candidate) and 0.0 <= noise <= 1.0
    labels = model.predict(space.X)
    assert adjusted_rand_score(y, labels) > 0.9, name
    rows = space.X[::2]
    sub = Subsample(number=0, seed=1, part=rows[::2], rows=rows)
    again = family.refit(space, 4 if name != "hdbscan" else 10, sub)
    assert again is not None and again.shape == (len(rows),)
    assert adjusted_rand_score(y[::2], again) > 0.9, name
    text = family.describe()
    assert isinstance(text, str) and len(text) > 10


def test_hdbscan_keeps_noise_outside_the_cluster_radius(space) -> None:
    space, _ = space
    family = FAMILIES["hdbscan"](keep_noise=True)
    model, _ = family.fit(space, 10)
    far = space.X[:3] + 1000.0
    assert (model.predict(far) == -1).all()
    assert "kept as -1" in family.describe()


def test_models_saved_under_the_old_module_names_still_load(tmp_path) -> None:
    X, _ = make_blobs(n_samples=150, centers=3, random_state=0)
    sweep = ClusterSweep(k_max=4, stability_resamples=0, silhouette_sample=100).fit(X)
    again = pickle.loads(pickle.dumps(sweep))
    np.testing.assert_array_equal(again.predict(X), sweep.labels_)
    # A skops file as the sweep wrote it before it moved to clusterflow.cluster.
    assert dump_component(sweep, tmp_path / "new") == "skops"
    with zipfile.ZipFile(tmp_path / "new.skops") as src:
        files = {name: src.read(name) for name in src.namelist()}
    schema = files["schema.json"].decode()
    old = (
        schema.replace('"clusterflow.cluster.sweep"', '"clusterflow.sweep"')
        .replace('"clusterflow.cluster.algorithms"', '"clusterflow.sweep"')
        .replace('"Candidate"', '"_Model"')
    )
    assert old != schema and json.loads(old)
    files["schema.json"] = old.encode()
    with zipfile.ZipFile(tmp_path / "old.skops", "w") as dst:
        for name, data in files.items():
            dst.writestr(name, data)
    loaded = load_component(tmp_path / "old", "skops")
    np.testing.assert_array_equal(loaded.predict(X), sweep.labels_)
