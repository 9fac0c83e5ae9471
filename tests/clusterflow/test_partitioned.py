"""Partitioned stages: the same rows and the same answer as the in-process stages.

The default-suite test runs a threaded 2-worker cluster on small data cut into several
partitions (cheap); the process cluster with text runs in tests/flows/test_partitioned_flow.py
under the slow marker.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clusterflow import stages
from clusterflow.config import TrainConfig
from clusterflow.distributed import DaskAddress, parse_dask_address
from clusterflow.errors import ConfigError, InputError
from clusterflow.io import read_table
from clusterflow.partitioned import (
    input_files,
    partition_size,
    plan_partitions,
    read_partition,
    train_partitioned,
    worker_headroom,
)
from clusterflow.partitioned._plan import GROWTH_PER_CSV_BYTE, PARTITION_BYTES
from clusterflow.store import StageStore
from tests.conftest import bundled


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("local", DaskAddress(None, 2)),
        ("local:3", DaskAddress(None, 3)),
        (" tcp://10.0.0.5:8786 ", DaskAddress("tcp://10.0.0.5:8786")),
    ],
)
def test_one_address_parser(value, expected):
    assert parse_dask_address(value) == expected


@pytest.mark.parametrize("value", ["", "local:0", "local:x", "foo", "tcp://host", "h:99999"])
def test_bad_address_says_how_to_write_it(value):
    with pytest.raises(ConfigError, match="Dask address"):
        parse_dask_address(value)


def test_an_unreachable_scheduler_is_one_clear_error():
    import socket

    import dask
    import distributed  # noqa: F401 - its defaults loaded, or leaving the set below drops them

    from clusterflow.distributed import dask_client

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),  # refused: retried till then
        pytest.raises(
            ConfigError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
        ),
        dask_client(f"tcp://127.0.0.1:{port}"),
    ):
        pass


def test_serve_and_cli_runner_agree_on_local_n():
    from deployments.runners import task_runner_for, task_runner_from_env

    for runner in (
        task_runner_for("local:3"),
        task_runner_from_env({"CLUSTERFLOW_DASK_ADDRESS": "local:3"}),
    ):
        assert runner.cluster_kwargs["n_workers"] == 3


def _tricky_csv(path):
    frame = pd.DataFrame(
        {
            "id": np.arange(300),
            "x": np.linspace(0, 1, 300).round(3),
            # quoted newlines and commas: a byte cut at a newline would split these records
            "note": [f'one\ntwo "q", row {i}' if i % 7 == 0 else f"n{i}" for i in range(300)],
            "code": ["007" if i % 2 else "abc" for i in range(300)],
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_csv_partitions_cut_at_record_boundaries(tmp_path):
    path = tmp_path / "tricky.csv"
    _tricky_csv(path)
    parts = plan_partitions(path, partition_bytes=1000)
    assert len(parts) > 5
    kinds = {"code": "text", "note": "text"}
    joined = pd.concat([read_partition(p, kinds) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(joined, read_table(path))


def test_partitions_shrink_with_the_workers_memory_limit():
    mib = 1 << 20
    workers = {
        "a": {"memory_limit": 1000 * mib, "metrics": {"memory": 200 * mib}},
        "b": {"memory_limit": 500 * mib, "metrics": {"memory": 160 * mib}},
    }
    # The tightest worker decides: 60% of 500 MiB less the 160 MiB it already holds.
    assert worker_headroom(workers) == int(0.6 * 500 * mib - 160 * mib)
    assert worker_headroom({"a": {"memory_limit": 0, "metrics": {"memory": mib}}}) is None
    big = 10_000 * mib
    assert partition_size(big, 2) == PARTITION_BYTES
    limited = partition_size(big, 2, worker_headroom(workers))
    assert limited == (140 * mib) // GROWTH_PER_CSV_BYTE
    # A worker already past its budget still gets the smallest partition, not zero.
    full = {"a": {"memory_limit": 100 * mib, "metrics": {"memory": 90 * mib}}}
    assert partition_size(big, 2, worker_headroom(full)) == mib


def test_parquet_folder_is_one_data_set(tmp_path):
    frame = read_table(bundled("penguins.csv"))
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(frame), 100)):
        frame.iloc[start : start + 100].to_parquet(folder / f"p{i}.parquet", index=False)
    parts = plan_partitions(folder)
    assert len(parts) == len(input_files(folder)) == 4
    joined = pd.concat([read_partition(p) for p in parts], ignore_index=True)
    expected = pd.concat([read_table(f) for f in input_files(folder)], ignore_index=True)
    pd.testing.assert_frame_equal(joined, expected)
    assert len(joined) == len(frame)
    assert len(input_files(str(folder / "p*.parquet"))) == 4
    with pytest.raises(InputError, match="no Parquet files"):
        input_files(str(tmp_path / "nothing*.parquet"))


@pytest.fixture(scope="module")
def threaded_client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_partitions_give_the_in_process_answer(tmp_path, threaded_client):
    raw = read_table(bundled("penguins.csv"))
    raw["bill_length_mm"] = raw["bill_length_mm"].astype(object)
    raw.loc[[5, 77, 200], "bill_length_mm"] = "not a number"  # quarantined in both runs
    data = tmp_path / "penguins.csv"
    raw.to_csv(data, index=False)
    config = TrainConfig(
        data=str(data),
        exclude_columns=("species",),
        workspace=str(tmp_path / "ws"),
        impute={"method": "knn"},  # donors from the fit sample: a real test of the gathered fit
        sweep={"algorithms": ["kmeans", "gmm"], "k_max": 5, "stability_resamples": 0},
    )
    store = StageStore(tmp_path / "ws" / "stages")
    snap = stages.ingest(data, store)
    validated = stages.validate(snap, config, store)
    imputed = stages.impute(validated, config, store)
    swept = stages.sweep(validated, imputed, None, config, store)

    run = train_partitioned(config, store, threaded_client, partition_bytes=4000)
    assert run.dask["partitions"] >= 4
    assert run.dask["workers"] == 2
    assert set(run.dask["seconds"]) >= {"ingest", "validate", "transform", "sweep", "assign"}
    from clusterflow_orchestration.flows.partitioned import dask_stages

    steps = dask_stages(run)  # summary.json's stages (it was {} on Dask)
    assert list(steps) == ["read", "validate", "impute+embed", "sweep", "assign"]
    assert steps["validate"]["rows_out"] == run.validated.n_valid
    assert all(step["seconds"] >= 0 for step in steps.values())
    assert (run.snapshot.n_rows, run.validated.n_valid, run.validated.n_quarantined) == (
        snap.n_rows,
        validated.n_valid,
        validated.n_quarantined,
    )
    assert run.validated.n_valid + run.validated.n_quarantined == len(raw)
    pd.testing.assert_frame_equal(
        pd.read_parquet(run.validated.quarantine_path).reset_index(drop=True),
        pd.read_parquet(validated.quarantine_path).reset_index(drop=True),
        check_dtype=False,
    )
    # the imputer fitted on the same training rows, the gaps profiled on the same rows
    assert run.imputed.profile == imputed.profile
    pd.testing.assert_frame_equal(
        pd.read_parquet(run.imputed.path).reset_index(drop=True),
        pd.read_parquet(imputed.path).reset_index(drop=True),
        check_dtype=False,
    )
    assert (run.swept.algorithm, run.swept.k) == (swept.algorithm, swept.k)
    np.testing.assert_array_equal(np.load(run.swept.labels_path), np.load(swept.labels_path))
    assert pd.read_parquet(run.validated.valid_path).index.tolist() == (
        pd.read_parquet(validated.valid_path).index.tolist()
    )


def _kmeans_model(data, workspace):
    """A small k-means model trained in-process on ``data`` (penguins without the species)."""
    from clusterflow.model import ClusterModel

    config = TrainConfig(
        data=str(data),
        exclude_columns=("species",),
        workspace=str(workspace),
        impute={"method": "iterative"},
        sweep={"algorithms": ["kmeans"], "k_max": 4, "stability_resamples": 0},
    )
    store = StageStore(workspace / "stages")
    validated = stages.validate(stages.ingest(data, store), config, store)
    swept = stages.sweep(validated, stages.impute(validated, config, store), None, config, store)
    return ClusterModel.load(swept.model_dir)


def test_partitioned_score_writes_the_in_process_file(tmp_path, threaded_client):
    from clusterflow.partitioned import score_partitioned
    from clusterflow.scoring import score_table

    data = tmp_path / "penguins.csv"
    read_table(bundled("penguins.csv")).to_csv(data, index=False)  # gaps imputed when scored
    model = _kmeans_model(data, tmp_path / "ws")

    for details in (False, True):
        whole = score_table(
            model,
            read_table(data),
            out=tmp_path / "whole.csv",
            model_uri="m",
            workspace=tmp_path / "ws",
            details=details,
        )
        parted = score_partitioned(
            model,
            data,
            client=threaded_client,
            out=tmp_path / "parted.csv",
            model_uri="m",
            workspace=tmp_path / "ws",
            details=details,
            partition_bytes=3000,
        )
        assert parted["dask"]["partitions"] >= 4 and parted["dask"]["workers"] == 2
        assert (tmp_path / "parted.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
        assert {k: parted[k] for k in whole} == whole | {"out": str(tmp_path / "parted.csv")}
    assert not list((tmp_path / "ws").glob(".score-parts-*"))  # its temporary folder is gone


def test_partitioned_score_gives_the_in_process_notes(tmp_path, threaded_client):
    # Ids repeated across partitions and a category the model never saw, in some of them.
    from clusterflow.partitioned import score_partitioned
    from clusterflow.scoring import score_table

    data = tmp_path / "penguins.csv"
    read_table(bundled("penguins.csv")).to_csv(data, index=False)
    model = _kmeans_model(data, tmp_path / "ws")
    frame = read_table(data)
    frame.insert(0, "pid", [f"p{i % 300}" for i in range(len(frame))])  # rows 300+ repeat
    frame.loc[200:, "island"] = "Anvers"
    batch = tmp_path / "batch.csv"
    frame.to_csv(batch, index=False)
    options = {"model_uri": "m", "workspace": tmp_path / "ws", "id_column": "pid"}
    whole = score_table(
        model, read_table(batch, text_columns=("pid",)), out=tmp_path / "w.csv", **options
    )
    parted = score_partitioned(
        model,
        batch,
        client=threaded_client,
        out=tmp_path / "p.csv",
        partition_bytes=3000,
        **options,
    )
    assert parted["dask"]["partitions"] >= 4
    for key in ("unseen_categories", "repeated_ids", "id_fallback"):
        assert parted[key] == whole[key], key
    assert whole["repeated_ids"] == {"rows": len(frame) - 300, "example": "row 300: 'p0'"}
    assert whole["unseen_categories"]["rows"] == len(frame) - 200


def test_partitioned_monitor_gives_the_in_process_drift(tmp_path, threaded_client):
    from clusterflow.monitoring import monitor_frame
    from clusterflow.partitioned import monitor_partitioned

    frame = read_table(bundled("penguins.csv"))
    train, batch = frame.iloc[::2], frame.iloc[1::2].reset_index(drop=True)
    train_path, batch_path = tmp_path / "train.csv", tmp_path / "batch.csv"
    train.to_csv(train_path, index=False)
    batch = batch.astype({"body_mass_g": object})
    # Quarantined with a reason either way; rows 40-99 fill whole partitions (no valid row).
    batch.loc[[3, *range(40, 100)], "body_mass_g"] = "heavy"
    batch.loc[batch["island"] == "Dream", "bill_depth_mm"] *= 1.3  # something to find
    batch.to_csv(batch_path, index=False)
    model = _kmeans_model(train_path, tmp_path / "ws")

    whole = monitor_frame(model, read_table(batch_path))
    parted = monitor_partitioned(
        model, batch_path, client=threaded_client, workspace=tmp_path / "ws", partition_bytes=2500
    )
    assert whole.rows_in == parted.rows_in == len(batch)
    assert json.dumps(parted.result.to_dict(), sort_keys=True, default=str) == json.dumps(
        whole.result.to_dict(), sort_keys=True, default=str
    )
    assert whole.result.drift_detected
    pd.testing.assert_frame_equal(parted.quarantine, whole.quarantine, check_dtype=False)
    assert len(whole.quarantine) == 61


@pytest.mark.parametrize("late", [False, True])
def test_partitions_read_zero_padded_ids_as_the_whole_file_does(tmp_path, threaded_client, late):
    """Padded in the first rows: text in every partition; padded only after them: numbers in
    both reads (the whole-file read judges the first rows only, and the partitions follow it)."""
    from clusterflow.io import ZERO_SNIFF_ROWS
    from clusterflow.partitioned._plan import plan_batch

    n = ZERO_SNIFF_ROWS + 5000
    ids = [str(i) for i in range(1, n)] + ["00042"] if late else [f"{i:06d}" for i in range(n)]
    data = tmp_path / "ids.csv"
    pd.DataFrame({"id": ids, "x": np.arange(len(ids), dtype=float)}).to_csv(data, index=False)
    whole = read_table(data)
    batch = plan_batch(data, threaded_client, partition_bytes=40_000)
    assert len(batch.parts) >= 4
    parted = pd.concat([job.read() for job in batch.jobs()])
    assert parted["id"].tolist() == whole["id"].tolist()
    assert isinstance(whole["id"].iloc[-1], str) is not late


def test_partitions_read_the_id_column_as_text_in_every_format(tmp_path, threaded_client):
    """An 18-digit id with a null: as read_table(text_columns) reads it, in every partition.

    Read by inference, a CSV partition holding the blank gives floats (and other digits), one
    without it integers; Parquet's Int64 and JSON Lines' numbers give floats as well.
    """
    from clusterflow.partitioned._plan import plan_batch

    big = 558672533168590848
    frame = pd.DataFrame({"pid": pd.array([big + i for i in range(400)], dtype="Int64")})
    frame["x"] = np.arange(400.0)
    frame["flag"] = pd.array([i % 3 == 0 for i in range(400)], dtype="boolean")
    frame["when"] = pd.date_range("2024-01-01", periods=400, freq="h")
    frame.loc[250, "pid"] = pd.NA
    frame.loc[7, "flag"] = pd.NA
    frame.to_csv(tmp_path / "ids.csv", index=False)
    frame.to_parquet(tmp_path / "ids.parquet", index=False)
    frame.to_json(tmp_path / "ids.jsonl", orient="records", lines=True)
    expected = [None if pd.isna(v) else str(v) for v in frame["pid"]]
    for name in ("ids.csv", "ids.parquet", "ids.jsonl"):
        batch = plan_batch(
            tmp_path / name, threaded_client, partition_bytes=2000, text_columns=["pid"]
        )
        if name == "ids.csv":
            assert len(batch.parts) >= 4
        parted = pd.concat([job.read() for job in batch.jobs()])
        whole = read_table(tmp_path / name, text_columns=["pid"])
        for got in (parted, whole):
            assert [None if pd.isna(v) else v for v in got["pid"]] == expected, name
            assert got["x"].tolist() == frame["x"].tolist(), name
        if name != "ids.csv":  # (CSV partitions read a non-numeric column as text throughout)
            # the other columns keep the types the whole-file read gives them (bool, timestamp)
            pd.testing.assert_frame_equal(parted.reset_index(drop=True), whole, obj=name)


@pytest.mark.parametrize(
    ("notes", "says"),
    [
        (["  ", "", " \t "], "is empty in every row"),
        (["3750", " 41.5", "", "-2e3"], "holds a number in every row, not text"),
    ],
)
def test_a_text_column_without_text_is_refused_by_both_reads(
    tmp_path, threaded_client, notes, says
):
    """In-process validation and the Dask driver share one roles check and say the same line."""
    from clusterflow.errors import ValidationFailed

    data = tmp_path / "blank.csv"
    rows = len(notes) * 30
    pd.DataFrame({"note": notes * 30, "x": np.arange(float(rows))}).to_csv(data, index=False)
    config = TrainConfig(data=str(data), text_column="note", workspace=str(tmp_path / "ws"))
    store = StageStore(tmp_path / "ws" / "stages")
    message = rf"blank.csv: the text column 'note' {says}"
    with pytest.raises(ValidationFailed, match=message):
        stages.validate(stages.ingest(data, store), config, store)
    with pytest.raises(ValidationFailed, match=message):
        train_partitioned(config, store, threaded_client, partition_bytes=400)


def test_a_short_csv_line_is_refused_by_the_partitioned_read_too(tmp_path, threaded_client):
    """pandas pads a short line of a byte-range partition with gaps, as it does a whole file."""
    from clusterflow.errors import InputError
    from clusterflow.partitioned._plan import plan_batch

    lines = [f"{i},{i * 2.0},{i % 3}" for i in range(400)]
    lines[300] = "300,600.0"
    data = tmp_path / "short.csv"
    data.write_text("a,b,c\n" + "\n".join(lines) + "\n")
    with pytest.raises(
        InputError,
        match=r"short.csv: malformed CSV \(a line with 2 fields, the header 3: '300,600.0'\)",
    ):
        plan_batch(data, threaded_client, partition_bytes=2000)
    with pytest.raises(InputError, match="line 302 has 2 fields"):
        read_table(data)
