"""Row accounting under fuzzing: every input row is clustered or quarantined with a reason.

The check compares sets of row numbers: input = clustered + quarantined, disjoint; a whole-file
error writes nothing (and, through the flow, registers nothing).

Generated frames mix gaps, numbers written as text, words in number columns, infinities,
overflowing numbers, repeated ids, empty texts and whole empty rows. The pure stages run
(ingest -> validate -> impute -> a cheap k-means sweep -> write_run_outputs): 20 examples in the
default suite, 200 under -m slow, where the flow variant runs too.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusterflow import outputs, stages
from clusterflow.config import RegistryConfig, TrainConfig
from clusterflow.errors import ClusterflowError
from clusterflow.store import StageStore

NUMBER_CELLS = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)),
    st.integers(-1000, 1000),
    st.none(),
    st.sampled_from(["inf", "-inf", "1e400", "abc", " 7 ", "", "NaN", "3,5", "-"]),
)
CATEGORY_CELLS = st.one_of(st.sampled_from(["a", "b", "c", " a", "ß", "", "1"]), st.none())


@st.composite
def messy_frames(draw) -> tuple[pd.DataFrame, bool]:
    n = draw(st.integers(3, 25))
    frame = pd.DataFrame(
        {
            "x": draw(st.lists(NUMBER_CELLS, min_size=n, max_size=n)),
            "y": draw(st.lists(st.one_of(st.floats(-50, 50), st.none()), min_size=n, max_size=n)),
            "kind": draw(st.lists(CATEGORY_CELLS, min_size=n, max_size=n)),
        }
    )
    # a few clean anchor rows so that most frames have something to cluster
    for i in range(min(n, 3)):
        frame.loc[i, ["x", "y", "kind"]] = [float(i * 10), float(i), "abc"[i]]
    with_id = draw(st.booleans())
    if with_id:
        ids = draw(st.lists(st.integers(0, n), min_size=n, max_size=n))  # repeats happen
        frame.insert(0, "id", [f"k{v}" for v in ids])
        frame.loc[: min(n, 3) - 1, "id"] = [f"anchor{i}" for i in range(min(n, 3))]
    return frame, with_id


def _config(path: Path, workspace: Path, with_id: bool) -> TrainConfig:
    return TrainConfig(
        data=str(path),
        id_column="id" if with_id else None,
        workspace=str(workspace),
        impute={"method": "mean"},
        sweep={"algorithms": ["kmeans"], "k_min": 2, "k_max": 3, "stability_resamples": 0},
    )


def _run_stages(
    frame: pd.DataFrame, with_id: bool, folder: Path
) -> tuple[dict, stages.Validated] | None:
    path = folder / "data.csv"
    frame.to_csv(path, index=False)
    config = _config(path, folder / "ws", with_id)
    store = StageStore(folder / "ws" / "stages")
    try:
        snapshot = stages.ingest(path, store)
        validated = stages.validate(snapshot, config, store)
        imputed = stages.impute(validated, config, store)
        swept = stages.sweep(validated, imputed, None, config, store)
    except ClusterflowError as err:
        # A whole-file verdict is allowed only with a message naming the file, and nothing is
        # written.
        assert path.name in err.one_line()
        assert not (folder / "out").exists()
        return None
    summary = outputs.write_run_outputs(
        folder / "out",
        snapshot=snapshot,
        validated=validated,
        imputed=imputed,
        embedded=None,
        swept=swept,
        registration=None,
        run_id="fuzz",
    )
    return summary, validated


def _check_accounting(
    frame: pd.DataFrame, summary: dict, folder: Path, with_id: bool, validated
) -> None:
    """Input rows = clustered rows + quarantined rows, as sets of row numbers, disjoint."""
    n = len(frame)
    assert summary["rows_in"] == n
    assert summary["rows_clustered"] + summary["rows_quarantined"] == n
    assignments = pd.read_csv(folder / "out" / "assignments.csv", dtype=str)
    quarantine = pd.read_csv(folder / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    clustered = pd.read_parquet(validated.valid_path, columns=[]).index.astype(int).tolist()
    quarantined = pd.read_parquet(validated.quarantine_path)["row"].astype(int).tolist()
    assert len(set(clustered)) == len(clustered) == len(assignments) == summary["rows_clustered"]
    assert len(set(quarantined)) == len(quarantined) == len(quarantine)
    assert not set(clustered) & set(quarantined)
    assert set(clustered) | set(quarantined) == set(range(n))
    # the files name exactly those rows: assignments by row number or id, the quarantine with
    # each row's cells as written in the input and a reason
    raw = pd.read_csv(folder / "data.csv", dtype=str, keep_default_na=False)
    if with_id:
        assert assignments["id"].tolist() == raw["id"].iloc[clustered].tolist()
    else:
        assert assignments["row"].astype(int).tolist() == clustered
    cells = quarantine.drop(columns="reason").values.tolist()
    assert cells == raw.iloc[quarantined].values.tolist()
    assert (quarantine["reason"].str.len() > 0).all()
    assert assignments["cluster"].notna().all()


def _fuzz_once(case) -> None:
    frame, with_id = case
    folder = Path(tempfile.mkdtemp(prefix="cf-fuzz-"))
    try:
        done = _run_stages(frame, with_id, folder)
        if done is not None:
            summary, validated = done
            _check_accounting(frame, summary, folder, with_id, validated)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ~1.9 s per example under coverage on a 2-core AMD EPYC (2.6 s while the figures were laid out
# with tight_layout; drawing them is still most of it): 20 in the default suite, the full 200
# under -m slow (measured: 200 passed in 383 s, 0 rows lost).
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=20, deadline=None, suppress_health_check=_HEALTH)
@given(case=messy_frames())
def test_every_row_is_clustered_or_quarantined(case):
    _fuzz_once(case)


# pytest-timeout's 900 s covers all 200 examples at once: at load 20 on the 2 shared cores they
# took longer, and the timeout fired inside an example that passes when rerun (FlakyFailure).
@pytest.mark.slow
@pytest.mark.timeout(2700)
@settings(max_examples=200, deadline=None, suppress_health_check=_HEALTH)
@given(case=messy_frames())
def test_every_row_is_clustered_or_quarantined_200(case):
    _fuzz_once(case)


def _versions(name: str) -> int:
    from mlflow import MlflowClient

    try:
        return len(MlflowClient().search_model_versions(f"name='{name}'"))
    except Exception:  # no registry tables yet: nothing registered
        return 0


@pytest.mark.slow
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=messy_frames())
def test_accounting_through_the_training_flow(case, prefect_harness, mlflow_uri):
    from flows.training import training_flow

    frame, with_id = case
    folder = Path(tempfile.mkdtemp(prefix="cf-fuzz-flow-"))
    before = _versions("fuzz")
    try:
        path = folder / "data.csv"
        frame.to_csv(path, index=False)
        config = _config(path, folder / "ws", with_id).model_copy(
            update={"out_dir": str(folder / "out"), "registry": RegistryConfig(model_name="fuzz")}
        )
        try:
            summary = training_flow(config=config, register_model=True)
        except ClusterflowError as err:
            # a whole-file error: nothing written, nothing registered
            assert path.name in err.one_line()
            assert not (folder / "out").exists()
            assert _versions("fuzz") == before
            return
        store = StageStore(folder / "ws" / "stages")
        validated = stages.validate(stages.ingest(path, store), config, store)
        assert validated.reused
        _check_accounting(frame, summary, folder, with_id, validated)
        assert _versions("fuzz") == before + 1 and summary["model_version"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
