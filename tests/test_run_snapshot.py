"""A run reads one snapshot: planning pins the version of every series (and how far it reached), and every step of
the run reads exactly that, whatever is ingested between its steps. On the real embedded PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.errors import StoreError
from forecasting.ingest.pipeline import ingest
from forecasting.steps.dispatch import run_partition_step
from forecasting.steps.plan import finish_run, plan_run
from forecasting.steps.select import select_champions
from forecasting.store.selectors import stored_series

DAYS = 90


def _write(tmp_path, name: str, days: int, *, seed: int, bump: float = 0.0) -> str:
    t = np.arange(days)
    values = 100 + 5 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(seed).normal(0, 1, days).cumsum()
    values[: days // 2] += bump  # a revision of the early history
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=days, freq="D").strftime("%Y-%m-%d"),
                  "value": values.round(3)}).to_csv(path, index=False)
    return str(path)


def _config(tmp_path):
    series = [{"name": "rev", "source": "csv", "params": {"path": _write(tmp_path, "rev", DAYS, seed=0)}},
              {"name": "ext", "source": "csv", "params": {"path": _write(tmp_path, "ext", DAYS, seed=1)}},
              {"name": "feat", "source": "csv", "params": {"path": _write(tmp_path, "feat", DAYS, seed=2)},
               "role": "feature"}]
    return parse_config({
        "name": "snap", "series": series,
        "preprocessing": {"horizon": 7, "target_lags": [1, 2, 7], "feature_lags": [1]},
        "models": {"enabled": ["naive", "linear"]},
        "backtest": {"n_windows": 2, "modes": ["latest", "as_known"]},
        "prediction": {"levels": [80]},
        "ingest": {"retries": 0},
    })


def test_train_and_predict_read_the_version_planned_though_a_revision_lands_after_the_backtest(database, tmp_path,
                                                                                                 conn):
    config = _config(tmp_path)
    ingest(database, config)
    run_id, partitions = plan_run(conn, config, command="run")
    [partition] = partitions
    pinned = stored_series(conn, keys=[("csv", "rev"), ("csv", "ext"), ("csv", "feat")])
    last_day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=DAYS - 1)
    for step in ("features", "backtest"):
        run_partition_step(conn, step, run_id=run_id, key=partition.key)
    select_champions(conn, run_id=run_id)

    # meanwhile: 'rev' and 'feat' are revised (new versions), 'ext' grows by three days (the same version, extended)
    _write(tmp_path, "rev", DAYS + 3, seed=0, bump=50.0)
    _write(tmp_path, "ext", DAYS + 3, seed=1)
    _write(tmp_path, "feat", DAYS + 3, seed=2, bump=50.0)
    outcomes = {r.series_name: r.outcome for r in ingest(database, config).records}
    assert outcomes == {"rev": "revised", "ext": "extended", "feat": "revised"}
    now = stored_series(conn, keys=[("csv", "rev"), ("csv", "ext"), ("csv", "feat")])
    assert now["rev"].version_id != pinned["rev"].version_id and now["ext"].version_id == pinned["ext"].version_id
    assert now["ext"].row_count == DAYS + 3

    for step in ("train", "predict"):
        run_partition_step(conn, step, run_id=run_id, key=partition.key)
    assert finish_run(conn, run_id=run_id) == ("succeeded", None)

    # the run records the pinned versions, as they were when it was planned
    recorded = conn.execute("SELECT series_version_id, role, row_count, last_ts FROM pipeline_run_data "
                            "WHERE run_id = %s ORDER BY series_version_id", (run_id,)).fetchall()
    assert recorded == sorted((s.version_id, "feature" if n == "feat" else "target", DAYS, last_day)
                              for n, s in pinned.items())
    assert conn.execute("SELECT data_as_of IS NOT NULL FROM pipeline_runs WHERE run_id = %s", (run_id,)).fetchone()[0]
    # backtest: its last actual is the last pinned day, with the pinned values
    last_actual, = conn.execute("SELECT max(ts) FROM backtest_forecasts WHERE run_id = %s", (run_id,)).fetchone()
    assert last_actual == last_day
    pinned_value = conn.execute(
        "SELECT value FROM series_observations_at_version(%s, 1) WHERE ts = %s",
        (pinned["rev"].series_id, last_day)).fetchone()[0]
    assert conn.execute("SELECT DISTINCT y FROM backtest_forecasts WHERE run_id = %s AND series_id = %s AND ts = %s",
                        (run_id, pinned["rev"].series_id, last_day)).fetchall() == [(pinned_value,)]
    # train: every model version was fitted on the pinned versions up to the pinned day
    trained = conn.execute(
        "SELECT DISTINCT d.series_version_id, d.row_count, d.last_ts, v.training_end FROM partition_models p "
        "JOIN model_versions v USING (model_version_id) JOIN model_version_data d USING (model_version_id) "
        "WHERE p.run_id = %s", (run_id,)).fetchall()
    assert {(r[0], r[1], r[2]) for r in trained} == {(s.version_id, DAYS, last_day) for s in pinned.values()}
    assert {r[3] for r in trained} == {last_day}
    # predict: forecasts start the day after the pinned data and name the pinned versions
    origin = conn.execute("SELECT DISTINCT series_version_id, last_ts, min(ts) OVER () FROM forecasts "
                          "WHERE run_id = %s", (run_id,)).fetchall()
    assert {r[0] for r in origin} == {pinned["rev"].version_id, pinned["ext"].version_id}
    assert {(r[1], r[2]) for r in origin} == {(last_day, last_day + pd.Timedelta(days=1))}
    last_values = dict(conn.execute("SELECT series_id, last_value FROM forecasts WHERE run_id = %s AND step = 1",
                                    (run_id,)).fetchall())
    assert last_values[pinned["rev"].series_id] == pytest.approx(pinned_value)

    # a new run pins the new data
    later, _ = plan_run(conn, config, command="backtest")
    rows = dict(conn.execute("SELECT series_version_id, row_count FROM pipeline_run_data WHERE run_id = %s",
                             (later,)).fetchall())
    assert rows == {s.version_id: DAYS + 3 for s in now.values()}


def test_a_replanned_run_keeps_its_snapshot(database, tmp_path, conn):
    config = _config(tmp_path)
    ingest(database, config)
    run_id, _ = plan_run(conn, config, command="train", triggered_by="airflow:x", reuse=True)
    before = conn.execute("SELECT series_version_id, row_count, last_ts FROM pipeline_run_data WHERE run_id = %s "
                          "ORDER BY 1", (run_id,)).fetchall()
    _write(tmp_path, "rev", DAYS + 3, seed=0, bump=50.0)
    ingest(database, config)
    again, _ = plan_run(conn, config, command="train", triggered_by="airflow:x", reuse=True)  # a retried plan task
    assert again == run_id
    assert conn.execute("SELECT series_version_id, row_count, last_ts FROM pipeline_run_data WHERE run_id = %s "
                        "ORDER BY 1", (run_id,)).fetchall() == before


def test_a_run_planned_before_snapshots_is_refused_by_its_steps(database, tmp_path, conn):
    config = _config(tmp_path)
    ingest(database, config)
    run_id, [partition] = plan_run(conn, config, command="backtest")
    conn.execute("UPDATE pipeline_runs SET data_as_of = NULL WHERE run_id = %s", (run_id,))
    conn.commit()
    with pytest.raises(StoreError, match=f"pipeline run {run_id} was planned before runs pinned the data"):
        run_partition_step(conn, "features", run_id=run_id, key=partition.key)
