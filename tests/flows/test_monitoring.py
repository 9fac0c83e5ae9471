"""The monitoring flow against real champions, under a real Prefect server and a real MLflow store.

Default suite: a tabular champion trained by the training flow on a random half of penguins;
the held-out half must be quiet, one species must drift, the event must reach the server, the
metrics must land in the champion's finished run, and the CLI must exit 0 either way.
Slow: the acceptance cases on birds (1990-93 vs 1996-97, text remarks) and tweets (2013 vs
2017-18), and the false-alarm rate over 20 seeded same-distribution batches.
"""

from __future__ import annotations

import json
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from clusterflow.config import MonitorConfig, TrainConfig
from clusterflow_orchestration.flows.monitoring import monitoring_flow
from clusterflow_orchestration.flows.training import training_flow
from clusterflow_orchestration.tasks.monitor import DRIFT_EVENT
from tests.conftest import bundled, shared

CHEAP_SWEEP = {"algorithms": ["kmeans"], "k_max": 6, "stability_resamples": 0}
EVENT_KEYS = {
    "data",
    "model_uri",
    "settings_from",
    "drifted_columns",
    "reasons",
    "text_auc",
    "cluster_psi",
}


class Champion:
    """A trained, registered champion and where its world lives."""

    def __init__(self, root, uri, summary, batches):
        self.root, self.tracking_uri, self.summary, self.batches = root, uri, summary, batches

    def monitor(self, name: str, dask_address: str | None = None, **options) -> dict:
        tag = "-dask" if dask_address else ""
        config = MonitorConfig(
            data=str(self.batches[name]),
            out_dir=str(self.root / f"monitor-{name}{tag}"),
            model_uri=self.summary["model_uri"],
            workspace=str(self.root / "ws"),
            **options,
        )
        return monitoring_flow(config=config, dask_address=dask_address)


def train_champion(root, frame: pd.DataFrame, batches: dict[str, pd.DataFrame], **train_options):
    """Train with the training flow on ``frame``; write the batches beside it as CSV."""
    root.mkdir(parents=True, exist_ok=True)
    train_path = root / "train.csv"
    frame.to_csv(train_path, index=False)
    paths = {}
    for name, batch in batches.items():
        paths[name] = root / f"{name}.csv"
        batch.to_csv(paths[name], index=False)
    config = TrainConfig(
        data=str(train_path),
        out_dir=str(root / "train-run"),
        workspace=str(root / "ws"),
        **train_options,
    )
    summary = training_flow(config=config)
    assert summary["promoted"] is True
    return summary, paths


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One MLflow SQLite store for the module (champions are trained once per module)."""
    root = tmp_path_factory.mktemp("monitor-flow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield root, uri
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def penguins_champion(prefect_harness, tracking):
    root, uri = tracking
    frame = pd.read_csv(bundled("penguins.csv"))
    half = frame.sample(frac=0.5, random_state=1)
    held_out = frame.drop(index=half.index)
    bad = held_out.copy()
    bad["body_mass_g"] = bad["body_mass_g"].astype(object)
    bad.iloc[0, bad.columns.get_loc("body_mass_g")] = "heavy"
    # Whole numbers written as such in a column with a gap (read back as floats): the
    # quarantined row must keep "181", not become "181.0".
    bad["flipper_length_mm"] = bad["flipper_length_mm"].astype("Int64")
    bad.iloc[1, bad.columns.get_loc("flipper_length_mm")] = pd.NA
    batches = {
        "held_out": held_out,
        "gentoo": held_out[held_out["species"] == "Gentoo"],
        "bad_rows": bad,
    }
    summary, paths = train_champion(
        root / "penguins",
        half,
        batches,
        exclude_columns=["species", "year"],
        sweep=CHEAP_SWEEP,
        registry={"model_name": "penguins"},
    )
    return Champion(root / "penguins", uri, summary, paths)


def read_drift_events(since: float, timeout: float = 180.0) -> list:
    """Events named DRIFT_EVENT that the (test) server stored since ``since`` (polled).

    The server writes events in batches every few seconds; on a loaded machine 30 s ran short.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    since_ts = pd.Timestamp(since, unit="s", tz="UTC")
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            # "until" defaults to the filter's creation time: build a fresh filter per poll.
            flt = EventFilter(
                event=EventNameFilter(name=[DRIFT_EVENT]),
                occurred=EventOccurredFilter(
                    since=since_ts, until=pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=1)
                ),
            )
            events = client.read_events(filter=flt, limit=50).events
            if events or time.monotonic() > deadline:
                return events
            time.sleep(0.5)


def test_held_out_half_is_quiet_and_logged_to_the_finished_run(penguins_champion):
    champ = penguins_champion
    data = champ.monitor("held_out")
    out = champ.root / "monitor-held_out"
    on_disk = json.loads((out / "drift.json").read_text())
    assert {"drift_detected", "columns", "embedding", "clusters", "novelty", "rows"} <= set(on_disk)
    assert on_disk["drift_detected"] is False and data["drift_detected"] is False
    assert data["event_emitted"] is False
    assert set(on_disk["columns"]) == {
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
    }
    assert on_disk["rows"]["in"] == on_disk["rows"]["compared"] == 172
    html = (out / "drift_report.html").read_text()
    assert "No drift" in html and "172" in html
    assert pd.read_csv(out / "quarantine.csv").empty

    client = MlflowClient(champ.tracking_uri)
    version = client.get_model_version("penguins", champ.summary["model_version"])
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"  # logging drift did not reopen the training run
    history = client.get_metric_history(version.run_id, "drift.detected")
    assert [m.value for m in history if m.step == data["mlflow_step"]] == [0.0]
    assert run.data.metrics["drift.columns"] == 0.0
    assert "drift.cluster_psi" in run.data.metrics
    assert "drift.text_auc" not in run.data.metrics  # no text column: nothing to measure
    artifacts = [a.path for a in client.list_artifacts(version.run_id, "drift")]
    assert f"drift/{data['mlflow_step']:04d}-held_out.json" in artifacts


def test_one_species_drifts_and_the_event_reaches_the_server(penguins_champion):
    champ = penguins_champion
    since = time.time() - 5
    data = champ.monitor("gentoo")
    assert data["drift_detected"] is True
    assert {"body_mass_g", "flipper_length_mm"} <= set(data["drifted_columns"])
    html = (champ.root / "monitor-gentoo" / "drift_report.html").read_text()
    assert "Drift detected" in html and "body_mass_g" in html
    assert data["event_emitted"] is True

    events = read_drift_events(since)
    ours = [e for e in events if e.payload.get("model_uri") == champ.summary["model_uri"]]
    assert ours, f"no {DRIFT_EVENT} event for {champ.summary['model_uri']} on the server"
    payload = ours[-1].payload
    assert EVENT_KEYS <= set(payload)
    assert payload["drifted_columns"] == data["drifted_columns"]
    assert payload["data"].endswith("gentoo.csv")
    assert ours[-1].resource.id == f"clusterflow.model.{champ.summary['model_uri']}"
    # the retrain reads the settings of this very model, even if the alias moves meanwhile
    assert payload["settings_from"] == f"runs:/{champ.summary['mlflow_run_id']}/model"

    # Each pass logs at the next step of the same run: a time series over batches.
    client = MlflowClient(champ.tracking_uri)
    run_id = client.get_model_version("penguins", champ.summary["model_version"]).run_id
    steps = {m.step: m.value for m in client.get_metric_history(run_id, "drift.detected")}
    assert steps[data["mlflow_step"]] == 1.0


def test_the_retrain_on_drift_takes_the_drifted_models_settings(penguins_champion):
    """The trigger's parameters are the dev deployment's (the demo's text and id columns) with
    the batch as data: on any other data the retrain failed ("--text-column 'remarks' is not a
    column"). With settings_from it trains with the drifted model's columns and sweep."""
    from clusterflow_orchestration.deployments.specs import load_specs

    champ = penguins_champion
    dev = next(s for s in load_specs(env="dev") if s.kind == "training")
    rendered = {  # what the automation renders from the event's payload
        **dev.triggers[0]["parameters"]["config"],
        "data": str(champ.root / "gentoo.csv"),
        "settings_from": f"runs:/{champ.summary['mlflow_run_id']}/model",
        "workspace": str(champ.root / "ws"),
        "out_dir": str(champ.root / "retrain"),
    }
    assert rendered["text_column"] == "remarks"  # the demo's, absent from penguins
    summary = training_flow(config=TrainConfig(**rendered), register_model=False)
    assert summary["columns"]["text"] is None
    assert {"species", "year"} <= set(summary["columns"]["excluded"])
    assert summary["rows_in"] == len(pd.read_csv(champ.root / "gentoo.csv")) > 0


def test_no_event_when_asked_not_to(penguins_champion):
    data = penguins_champion.monitor("gentoo", emit_event=False)
    assert data["drift_detected"] is True and data["event_emitted"] is False


def test_monitoring_on_a_dask_cluster_writes_the_same_report(penguins_champion):
    champ = penguins_champion
    plain = champ.monitor("bad_rows", emit_event=False)
    on_dask = champ.monitor("bad_rows", emit_event=False, dask_address="local:1")
    drop = {"out_dir", "mlflow_step"}  # each pass logs at the next step of the run
    assert {k: v for k, v in on_dask.items() if k not in drop} == {
        k: v for k, v in plain.items() if k not in drop
    }
    same = ("quarantine.csv",)
    for name in same:
        assert (champ.root / "monitor-bad_rows-dask" / name).read_bytes() == (
            champ.root / "monitor-bad_rows" / name
        ).read_bytes()


def test_bad_rows_in_the_batch_are_counted(penguins_champion):
    champ = penguins_champion
    data = champ.monitor("bad_rows")
    assert data["rows"]["quarantined"] == 1 and data["rows"]["compared"] == 171
    quarantine = pd.read_csv(champ.root / "monitor-bad_rows" / "quarantine.csv")
    assert quarantine["reason"].tolist() == ["column body_mass_g: 'heavy' is not a number"]
    assert quarantine["body_mass_g"].tolist() == ["heavy"]
    # The row as the file has it: integers stay integers, blanks stay blank.
    written = pd.read_csv(champ.batches["bad_rows"], dtype=str, keep_default_na=False)
    as_csv = pd.read_csv(
        champ.root / "monitor-bad_rows" / "quarantine.csv", dtype=str, keep_default_na=False
    )
    expected = written[written["body_mass_g"] == "heavy"].reset_index(drop=True)
    pd.testing.assert_frame_equal(as_csv.drop(columns="reason"), expected)
    assert "." not in expected["flipper_length_mm"].iloc[0]  # the case that matters is here


def test_cli_exits_zero_on_drift_and_nonzero_only_on_errors(penguins_champion, capsys, tmp_path):
    from clusterflow_cli.main import main

    champ = penguins_champion
    common = ["--model", champ.summary["model_uri"], "--workspace", str(champ.root / "ws")]
    out = tmp_path / "cli"
    code = main(["monitor", str(champ.batches["gentoo"]), "--out", str(out), "--json", *common])
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert code == 0 and printed["drift_detected"] is True
    # the reaction is read from the API the flow reported to (it said "nothing reacts" unless
    # PREFECT_API_URL was exported, while the stack it had found went on to retrain)
    assert "no automation on http" in captured.err, captured.err
    assert (
        json.loads((out / "drift.json").read_text())["drifted_columns"]
        == printed["drifted_columns"]
    )

    code = main(["monitor", str(champ.batches["held_out"]), "--out", str(out), *common])
    assert code == 0 and "no drift" in capsys.readouterr().out

    code = main(
        ["monitor", str(champ.batches["held_out"]), "--out", str(out), "--model",
         "models:/no-such-model@champion", "--workspace", str(champ.root / "ws")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no-such-model" in err[0]

    code = main(["monitor", str(tmp_path / "missing.csv"), "--out", str(out), *common])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "missing.csv" in err[0]


# --- acceptance on the real drifts (slow: real text embeddings of a few thousand rows) -----------


def _years(frame: pd.DataFrame, column: str, fmt: str | None = None) -> pd.Series:
    return pd.to_datetime(frame[column], format=fmt, utc=True).dt.year


@pytest.fixture(scope="module")
def birds_champion(prefect_harness, tracking):
    root, uri = tracking
    birds = pd.read_csv(shared("birds.csv"))
    year = _years(birds, "date", "%m/%d/%Y %H:%M:%S")
    early = birds[year.between(1990, 1993)].sample(frac=1.0, random_state=0)
    late = birds[year.between(1996, 1997)].sample(n=2000, random_state=0)
    summary, paths = train_champion(
        root / "birds",
        early.iloc[:3000],
        {"same": early.iloc[3000:5000], "late": late},
        text_column="remarks",
        exclude_columns=["date", "opid", "phase_of_flt"],
        sweep=CHEAP_SWEEP,
        registry={"model_name": "birds"},
    )
    return Champion(root / "birds", uri, summary, paths)


@pytest.mark.slow
def test_birds_1996_97_drift_and_a_held_out_part_of_1990_93_does_not(birds_champion):
    late = birds_champion.monitor("late", emit_event=False)
    assert late["drift_detected"] is True
    assert late["drifted_columns"], late["reasons"]  # the report names the columns that moved
    assert all(any(c in r for r in late["reasons"]) for c in late["drifted_columns"])
    same = birds_champion.monitor("same", emit_event=False)
    assert same["drift_detected"] is False, same["reasons"]


@pytest.fixture(scope="module")
def tweets_champion(prefect_harness, tracking):
    root, uri = tracking
    tweets = pd.read_csv(shared("tweets.csv"))
    year = _years(tweets, "created_at")
    y2013 = tweets[year == 2013].sample(frac=1.0, random_state=0)
    late = tweets[year.between(2017, 2018)].sample(n=1500, random_state=0)
    train, rest = y2013.iloc[:2500], y2013.iloc[2500:]
    batches = {"late": late}
    for seed in range(20):
        batches[f"same{seed:02d}"] = rest.sample(n=1000, random_state=seed)
    summary, paths = train_champion(
        root / "tweets",
        train,
        batches,
        text_column="text",
        id_column="id_str",
        exclude_columns=["created_at", "in_reply_to_user_id_str"],
        sweep=CHEAP_SWEEP,
        registry={"model_name": "tweets"},
    )
    return Champion(root / "tweets", uri, summary, paths)


@pytest.mark.slow
def test_tweets_2017_18_text_drift(tweets_champion):
    data = tweets_champion.monitor("late", emit_event=False)
    assert data["drift_detected"] is True
    assert data["embedding"]["drifted"] is True, data["embedding"]
    assert data["embedding"]["auc"] > 0.8


@pytest.mark.slow
def test_tweets_false_alarm_rate_on_same_year_batches(tweets_champion):
    alarms, aucs = [], []
    for seed in range(20):
        data = tweets_champion.monitor(f"same{seed:02d}", emit_event=False, random_state=seed)
        alarms.append(data["drift_detected"])
        aucs.append(data["embedding"]["auc"])
    assert np.mean(alarms) < 0.05, list(zip(alarms, aucs, strict=True))
    assert max(aucs) < 0.65
