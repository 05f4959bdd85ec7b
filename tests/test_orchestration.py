"""What the Airflow tasks call, run here without a scheduler against the real embedded PostgreSQL."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from forecasting.config import load_config
from forecasting.ingest import ingest
from forecasting.orchestration import model_run


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


def _counts(conn) -> tuple[int, int, int]:
    return conn.execute(
        "SELECT (SELECT count(*) FROM pipeline_runs), (SELECT count(*) FROM backtest_metrics), "
        "(SELECT count(*) FROM forecasts)"
    ).fetchone()


def test_rerunning_a_task_of_the_same_airflow_run_writes_nothing_twice(pipeline, conn):
    label = "airflow:forecasting_p_train:manual__2026-11-24T00:00:00+00:00"
    first = model_run(pipeline, command="backtest", triggered_by=label)
    after_first = _counts(conn)
    assert after_first[0] == 1 and after_first[1] > 0 and first["reused_run"] is False

    again = model_run(pipeline, command="backtest", triggered_by=label)  # the task cleared and run again
    assert again["run_id"] == first["run_id"] and again["reused_run"] is True
    assert again["groups"] == first["groups"]  # the same small summary goes to XCom
    assert _counts(conn) == after_first

    other = model_run(pipeline, command="backtest", triggered_by=label.replace("manual__", "scheduled__"))
    assert other["run_id"] != first["run_id"] and other["reused_run"] is False  # another DAG run computes anew
    assert _counts(conn)[0] == 2


def test_a_failed_run_is_not_reused_and_a_changed_trigger_parameter_is_a_new_run(pipeline, conn):
    label = "airflow:forecasting_p_predict:manual__2026-11-24T00:00:00+00:00"
    first = model_run(pipeline, command="predict", triggered_by=label)
    conn.execute("UPDATE pipeline_runs SET status = 'failed' WHERE run_id = %s", (first["run_id"],))
    conn.commit()
    retried = model_run(pipeline, command="predict", triggered_by=label)
    assert retried["run_id"] != first["run_id"] and retried["reused_run"] is False

    longer = model_run(pipeline, command="predict", triggered_by=label, horizon=5)  # trigger param: new config
    assert longer["run_id"] != retried["run_id"]
    steps = conn.execute("SELECT max(step) FROM forecasts WHERE run_id = %s", (longer["run_id"],)).fetchone()[0]
    assert steps == 5


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
