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
