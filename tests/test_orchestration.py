"""What the Airflow tasks call, run here without a scheduler against the real embedded PostgreSQL."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from forecasting.config import load_config
from forecasting.ingest.pipeline import ingest
from forecasting.orchestration import (
    PermanentTaskError,
    model_step,
    plan_model_run,
    publish_run,
    run_step,
)


@pytest.fixture
def pipeline(tmp_path, database, monkeypatch):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)  # no forecasting_db connection: the env URL
    ts = pd.date_range("2022-01-02", periods=60, freq="W-SUN").strftime("%Y-%m-%d")
    values = 50 + np.random.default_rng(3).normal(0, 1, 60).cumsum()
    (tmp_path / "s.csv").write_text(pd.DataFrame({"ts": ts, "value": values.round(3)}).to_csv(index=False))
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""
        name: p
        series: [{name: s, source: csv, params: {path: s.csv}}]
        preprocessing: {horizon: 3, target_lags: [1, 2]}
        models: {enabled: [naive, seasonal_naive]}
        backtest: {n_windows: 2, modes: [latest]}
    """), encoding="utf-8")
    ingest(database, load_config(path), config_path=str(path))
    return str(path)


def _counts(conn) -> tuple[int, int, int, int]:
    return conn.execute(
        "SELECT (SELECT count(*) FROM pipeline_runs), (SELECT count(*) FROM backtest_metrics), "
        "(SELECT count(*) FROM forecasts), (SELECT count(*) FROM model_versions)"
    ).fetchone()


def _train(path: str, label: str) -> list[dict]:
    partitions = plan_model_run(path, command="train", triggered_by=label)
    for step in ("features", "backtest"):
        for partition in partitions:
            model_step(step, partition)
    run_step("select", partitions[0]["run_id"])
    for partition in partitions:
        model_step("train", partition)
    return partitions


def test_rerunning_the_tasks_of_the_same_airflow_run_writes_nothing_twice(pipeline, conn):
    label = "airflow:forecasting_p_train:manual__2026-11-24T00:00:00+00:00"
    first = _train(pipeline, label)
    assert [p["label"] for p in first] == ["W-SUN partition 1 of 1 (1 series)"]
    assert publish_run(first[0]["run_id"])["status"] == "succeeded"
    after_first = _counts(conn)
    assert after_first[0] == 1 and after_first[1] > 0 and after_first[3] == 2

    again = _train(pipeline, label)  # every task cleared and run again: the same run, the same rows
    assert again == first
    assert publish_run(first[0]["run_id"])["status"] == "succeeded"
    assert _counts(conn) == after_first

    other = _train(pipeline, label.replace("manual__", "scheduled__"))  # another DAG run: a new pipeline run
    assert other[0]["run_id"] != first[0]["run_id"]
    assert _counts(conn)[0] == 2 and _counts(conn)[3] == 2  # ...that reuses the registered model versions


def test_predict_with_a_trigger_horizon_uses_the_registered_models_and_never_trains(pipeline, conn):
    label = "airflow:forecasting_p_predict:manual__2026-11-24T00:00:00+00:00"
    partitions = plan_model_run(pipeline, command="predict", triggered_by=label)
    with pytest.raises(PermanentTaskError, match=r"W-SUN partition 1 of 1.*no trained model version for model\(s\) "
                                                 r"naive, seasonal_naive"):
        model_step("predict", partitions[0])
    assert publish_run(partitions[0]["run_id"])["status"] == "failed"

    _train(pipeline, "airflow:forecasting_p_train:manual__2026-11-24T00:00:00+00:00")
    versions = _counts(conn)[3]
    longer = plan_model_run(pipeline, command="predict", triggered_by=label, horizon=5)
    assert longer[0]["run_id"] != partitions[0]["run_id"]  # another horizon is another run config
    summary = model_step("predict", longer[0])
    assert publish_run(longer[0]["run_id"])["status"] == "succeeded"
    assert set(summary["models"]) == {"naive", "seasonal_naive"}
    steps = conn.execute("SELECT max(step) FROM forecasts WHERE run_id = %s", (longer[0]["run_id"],)).fetchone()[0]
    assert steps == 5
    assert _counts(conn)[3] == versions  # no model version was created


def test_the_forecasting_db_connection_wins_over_the_env_url_and_keeps_its_extras(database, monkeypatch):
    import json
    from urllib.parse import parse_qs, urlsplit

    from forecasting.orchestration import database_for_airflow

    parts = urlsplit(database.url)
    socket_dir = parse_qs(parts.query)["host"][0]
    monkeypatch.setenv("FORECASTING_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/not_this_one")
    monkeypatch.setenv("AIRFLOW_CONN_FORECASTING_DB", json.dumps({
        "conn_type": "postgres", "host": socket_dir, "login": parts.username, "schema": parts.path.lstrip("/"),
        "extra": {"application_name": "forecasting-airflow", "connect_timeout": "5"}}))
    chosen = database_for_airflow()
    assert chosen.embedded is False
    with chosen.connect() as conn:
        name, db = conn.execute("SELECT current_setting('application_name'), current_database()").fetchone()
    assert (name, db) == ("forecasting-airflow", parts.path.lstrip("/"))


def test_without_the_connection_the_tasks_use_the_env_url(database, monkeypatch):
    from forecasting.orchestration import database_for_airflow

    monkeypatch.delenv("AIRFLOW_CONN_FORECASTING_DB", raising=False)
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    assert database_for_airflow().url == database.url


def test_a_tcp_connection_with_special_characters_becomes_a_valid_libpq_url(monkeypatch):
    import json

    from psycopg.conninfo import conninfo_to_dict

    from forecasting.orchestration import database_for_airflow

    monkeypatch.setenv("AIRFLOW_CONN_FORECASTING_DB", json.dumps({
        "conn_type": "postgres", "host": "db.example.org", "port": 6432, "login": "fc user",
        "password": "p@ss/w:rd?", "schema": "forecasts", "extra": {"sslmode": "verify-full", "iam": False}}))
    parsed = conninfo_to_dict(database_for_airflow().url)
    assert parsed == {"host": "db.example.org", "port": "6432", "user": "fc user", "password": "p@ss/w:rd?",
                      "dbname": "forecasts", "sslmode": "verify-full"}  # `iam` is the hook's, not libpq's


def test_a_retried_shard_still_counts_what_its_first_try_stored(tmp_path, database, monkeypatch):
    from forecasting.orchestration import changed_series, ingest_shard

    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    ts = pd.date_range("2022-01-02", periods=30, freq="W-SUN").strftime("%Y-%m-%d")
    (tmp_path / "a.csv").write_text(pd.DataFrame({"ts": ts, "value": range(30)}).to_csv(index=False))
    path = tmp_path / "q.yaml"
    path.write_text("name: q\nseries: [{name: a, source: csv, params: {path: a.csv}}]\n", encoding="utf-8")
    label = "airflow:forecasting_q_ingest:manual__2026-11-29T00:00:00+00:00"
    first = ingest_shard(str(path), ["a"], triggered_by=label, final_try=False)
    retried = ingest_shard(str(path), ["a"], triggered_by=label, final_try=True)  # the task marked failed, retried
    assert first["outcomes"] == {"a": "initial"} and retried["outcomes"] == {"a": "unchanged"}
    assert changed_series(label) == ["a"]
    assert changed_series(label.replace("manual", "scheduled")) == []


def test_shard_labels_fit_airflows_column_whatever_the_shard():
    from forecasting.orchestration import shard_label

    assert shard_label("csv", ["s0", "s1"]) == "csv: s0, s1"
    names = [f"series_with_a_long_name_{i:05d}" for i in range(250)]
    expected = "csv: series_with_a_long_name_00000 … series_with_a_long_name_00249 (250 series)"
    assert shard_label("csv", names) == expected
    long = shard_label("google_trends", ["x" * 200, "y" * 200])
    assert len(long) == 250 and long.endswith("…")
