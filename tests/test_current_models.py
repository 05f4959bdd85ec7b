"""Whether to train is decided by what is missing: a partition lacks current models when no registered model version
has the fingerprint of its current data, settings and code (``forecasting.steps.current``), and the ingest DAG's
publish task emits the data Asset then, whether or not its ingest changed anything. Against the real embedded
PostgreSQL, after real CLI and Airflow-task runs."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from forecasting.cli import main as cli_main
from forecasting.config import load_config
from forecasting.orchestration import ingest_shard, model_step, plan_model_run, run_step, training_needed
from forecasting.steps.current import model_currency, models_missing

INGEST = "airflow:forecasting_cur_ingest:manual__2026-12-01T00:00:00+00:00"
CONFIG = """
    name: cur
    series:
      - {name: s0, source: csv, params: {path: s0.csv}}
      - {name: s1, source: csv, params: {path: s1.csv}}
      - {name: flat, source: csv, params: {path: flat.csv}}
      - {name: short, source: csv, params: {path: short.csv}}
    preprocessing: {horizon: 3}
    models: {enabled: [naive, theta]}
    modeling: {partition_size: 2}
    backtest: {n_windows: 2, modes: [latest]}
"""


def _write_series(folder, *, periods: int = 60) -> None:
    ts = pd.date_range("2022-01-02", periods=periods, freq="W-SUN").strftime("%Y-%m-%d")
    for i in range(2):
        values = 50 + 10 * i + np.random.default_rng(i).normal(0, 1, periods).cumsum()
        pd.DataFrame({"ts": ts, "value": values.round(3)}).to_csv(folder / f"s{i}.csv", index=False)
    # screened out by every training (constant), and forecast only by the models that take 5 points
    pd.DataFrame({"ts": ts, "value": 7.0}).to_csv(folder / "flat.csv", index=False)
    pd.DataFrame({"ts": ts[:5], "value": [1.0, 2.0, 3.0, 2.0, 1.0]}).to_csv(folder / "short.csv", index=False)


@pytest.fixture
def config_path(tmp_path, database, monkeypatch):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    _write_series(tmp_path)
    path = tmp_path / "cur.yaml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    return path


def _edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _decide(conn, path) -> dict[str, str]:
    """partition key -> why it lacks current models ('' when its models are current)."""
    return {p.key: "; ".join(p.missing) for p in model_currency(conn, load_config(path))}


def _airflow_ingest(path, label: str = INGEST) -> dict:
    """The ingest DAG's tasks for one run: every series in one shard, then publish's decision."""
    ingest_shard(str(path), ["s0", "s1", "flat", "short"], triggered_by=label, final_try=True)
    return training_needed(str(path), triggered_by=label)


def _airflow_train(path, label: str, models: list[str] | None = None) -> None:
    """The train DAG's tasks in order: plan, features and backtest per partition, select, train per partition."""
    partitions = plan_model_run(str(path), command="train", triggered_by=label, models=models)
    for step in ("features", "backtest"):
        for partition in partitions:
            model_step(step, partition)
    run_step("select", partitions[0]["run_id"])
    for partition in partitions:
        model_step("train", partition)


def _fits(conn) -> int:
    return conn.execute("SELECT count(*) FROM model_versions").fetchone()[0]


def test_after_the_cli_run_an_unchanged_ingest_trains_nothing_and_a_config_change_trains(config_path, conn):
    # the CLI's ingest only: nothing trained yet, so an Airflow ingest that changes nothing still trains
    assert cli_main(["-q", "ingest", "--config", str(config_path)]) == 0
    decision = _airflow_ingest(config_path)
    assert decision["changed"] == [] and decision["train"] is True
    assert decision["missing"] == {"W-SUN:1/2": "no training of this partition has succeeded yet",
                                   "W-SUN:2/2": "no training of this partition has succeeded yet"}
    assert "no series changed in this run's ingest; 2 of 2 partition(s) lack current models" in decision["message"]

    # the README's CLI run: its models are current for the data, settings and code, so nothing is to train
    # (the constant series, screened out of every training, does not make its partition look untrained)
    assert cli_main(["-q", "run", "--config", str(config_path)]) == 1  # partial: the constant series is skipped
    fits = _fits(conn)
    decision = _airflow_ingest(config_path, INGEST.replace("01T", "02T"))
    assert decision["train"] is False and decision["missing"] == {} and decision["changed"] == []
    run_id = conn.execute("SELECT max(run_id) FROM pipeline_runs WHERE command = 'run'").fetchone()[0]
    assert decision["current"] == {"W-SUN:1/2": run_id, "W-SUN:2/2": run_id}
    assert decision["message"] == (
        "no series changed in this run's ingest; every partition has current models (registered for its current "
        f"data, settings and code by pipeline run(s) {run_id}): the data Asset is not emitted, training does not run")

    # a model's setting changed in the config: the data Asset fires although the ingest changed nothing
    _edit(config_path, "models: {enabled: [naive, theta]}",
          "models: {enabled: [naive, theta], theta: {seasonal: false}}")
    decision = _airflow_ingest(config_path, INGEST.replace("01T", "03T"))
    assert decision["train"] is True and decision["changed"] == []
    assert set(decision["missing"]) == {"W-SUN:1/2", "W-SUN:2/2"}
    assert decision["missing"]["W-SUN:1/2"] == (
        f"no version registered by its last training (run {run_id}) has the fingerprint of theta now (the settings "
        "its constructor receives changed)")
    # the train DAG it starts refits theta only, and then the models are current again
    _airflow_train(config_path, "airflow:forecasting_cur_train:asset__2026-12-03")
    assert _fits(conn) == fits + 2  # theta, once per partition
    assert models_missing(conn, load_config(config_path)) == []
    assert _fits(conn) == fits + 2  # deciding fits nothing


def test_what_makes_a_partition_lack_current_models(config_path, conn, monkeypatch):
    assert cli_main(["-q", "run", "--config", str(config_path)]) == 1  # partial: the constant series is skipped
    run_id = conn.execute("SELECT max(run_id) FROM pipeline_runs").fetchone()[0]
    assert _decide(conn, config_path) == {"W-SUN:1/2": "", "W-SUN:2/2": ""}

    # the code changed (another commit): every fingerprint differs
    import forecasting.steps.current as current

    with monkeypatch.context() as patched:
        patched.setattr(current, "code_version", lambda: "0.0.0+gdifferent")
        decided = _decide(conn, config_path)
    assert decided["W-SUN:1/2"].startswith(f"code differs from its last training's (run {run_id}: ")
    assert decided["W-SUN:1/2"].endswith(", now 0.0.0+gdifferent)")

    # settings the backtest (and so the champions) depend on, and the enabled models
    _edit(config_path, "n_windows: 2", "n_windows: 3")
    assert _decide(conn, config_path)["W-SUN:2/2"] == (
        f"settings differ from its last training's (run {run_id}): backtest.n_windows: 2 -> 3")
    _edit(config_path, "n_windows: 3", "n_windows: 2")
    _edit(config_path, "enabled: [naive, theta]", "enabled: [naive]")
    assert _decide(conn, config_path)["W-SUN:1/2"] == (
        f"settings differ from its last training's (run {run_id}): models.enabled: ['naive', 'theta'] -> ['naive']")
    _edit(config_path, "enabled: [naive]", "enabled: [naive, theta]")

    # other partitions: the series its last training had in it are not those of the partition now
    s1 = "  - {name: s1, source: csv, params: {path: s1.csv}}\n"
    flat = "  - {name: flat, source: csv, params: {path: flat.csv}}\n"
    _edit(config_path, s1 + flat, flat + s1)  # partitions by config order: [s0, flat], [s1, short]
    assert set(_decide(conn, config_path).values()) == {
        f"its series are not those its last training (run {run_id}) had in it"}
    _edit(config_path, flat + s1, s1 + flat)
    assert set(_decide(conn, config_path).values()) == {""}

    # new data of one series: only its partition lacks current models
    _write_series(config_path.parent, periods=61)
    assert cli_main(["-q", "ingest", "--config", str(config_path)]) == 0
    assert _decide(conn, config_path) == {
        "W-SUN:1/2": f"data stored since its last training (run {run_id}): s0, s1",
        "W-SUN:2/2": f"data stored since its last training (run {run_id}): flat"}

    # a training that left a model out (here: a manual trigger's model list) does not serve the config's models
    _airflow_train(config_path, "airflow:forecasting_cur_train:manual__2026-12-04", models=["naive"])
    trained = conn.execute("SELECT max(run_id) FROM pipeline_runs").fetchone()[0]
    assert set(_decide(conn, config_path).values()) == {
        f"settings differ from its last training's (run {trained}): models.enabled: ['naive'] -> ['naive', 'theta']"}
    _airflow_train(config_path, "airflow:forecasting_cur_train:manual__2026-12-05")
    assert models_missing(conn, load_config(config_path)) == []


def test_nothing_to_decide_before_any_target_is_stored(config_path, conn):
    decision = training_needed(str(config_path), triggered_by=INGEST)
    assert decision["train"] is False and decision["missing"] == {} and decision["current"] == {}
    assert decision["message"] == ("no series changed in this run's ingest; no stored target series can be modelled "
                                   "yet: the data Asset is not emitted, training does not run")


def test_a_config_broken_during_the_ingest_still_announces_what_it_stored(config_path, conn):
    ingest_shard(str(config_path), ["s0", "s1", "flat", "short"], triggered_by=INGEST, final_try=True)
    _edit(config_path, "horizon: 3", "horizon: -1")  # edited while the ingest ran: valid YAML, invalid config
    decision = training_needed(str(config_path), triggered_by=INGEST)
    assert decision["train"] is True and decision["changed"] == ["flat", "s0", "s1", "short"]
    assert decision["message"].startswith("4 series changed in this run's ingest: flat, s0, s1, short; whether the "
                                          "models are current cannot be decided: ")
    assert decision["message"].endswith("the data Asset is emitted (the train DAG will report the error)")
    again = training_needed(str(config_path), triggered_by=INGEST.replace("01T", "02T"))
    assert again["train"] is False and again["message"].endswith("the data Asset is not emitted")


def test_an_ensemble_whose_members_the_backtest_chose_is_current_after_its_training(config_path, conn):
    # the ensemble's settings hold the members and combination its backtest chose: the decision must take them
    # from the registered version, not from the config (which names no members), or every ingest would train
    _edit(config_path, "models: {enabled: [naive, theta]}", "models: {enabled: [naive, theta, ets, linear, ensemble]}")
    assert cli_main(["-q", "run", "--config", str(config_path)]) == 1  # partial: the constant series is skipped
    members = conn.execute("SELECT v.params -> 'model' -> 'members' FROM model_versions v JOIN models m "
                           "USING (model_id) WHERE m.name = 'ensemble'").fetchall()
    assert members and all(set(row[0]) <= {"theta", "ets", "linear"} for row in members)
    assert _decide(conn, config_path) == {"W-SUN:1/2": "", "W-SUN:2/2": ""}
    # a member's setting changed: the members are stale, and so is the ensemble made of them
    _edit(config_path, "enabled: [naive, theta, ets, linear, ensemble]}",
          "enabled: [naive, theta, ets, linear, ensemble], theta: {seasonal: false}}")
    assert set(models_missing(conn, load_config(config_path))) == {"W-SUN:1/2", "W-SUN:2/2"}
