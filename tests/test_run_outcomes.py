"""Nothing half-done is visible or left behind, on the real embedded PostgreSQL: a run's forecasts appear when it
is published, a predict step that dies writes nothing, steps of a dead run are abandoned with it, a run refused while
planning is recorded as failed, and a model version names the run that registered it and the runs that reused it."""

from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.ingest.pipeline import ingest
from forecasting.models.registry import build_model
from forecasting.run import execute
from forecasting.steps.dispatch import run_partition_step
from forecasting.steps.plan import finish_run, plan_run
from forecasting.steps.select import select_champions
from forecasting.steps.train import fingerprint
from forecasting.store.steps import run_step_start

DAYS = 80
_VIEWS = ("v_run_forecasts", "v_forecast_intervals", "v_forecast_explanations", "champion_forecasts")


def _csv(tmp_path, name: str, seed: int) -> str:
    t = np.arange(DAYS)
    values = 100 + 5 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(seed).normal(0, 1, DAYS).cumsum()
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=DAYS).strftime("%Y-%m-%d"),
                  "value": values.round(3)}).to_csv(path, index=False)
    return str(path)


def _raw(tmp_path, **overrides) -> dict:
    raw = {"name": "outcomes",
           "series": [{"name": f"s{i}", "source": "csv", "params": {"path": _csv(tmp_path, f"s{i}", i)}}
                      for i in range(3)],
           "preprocessing": {"horizon": 7, "target_lags": [1, 2, 7]},
           "models": {"enabled": ["naive", "linear", "lightgbm_global"],
                      "lightgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5}},
           "backtest": {"n_windows": 2, "modes": ["latest"]},
           "prediction": {"levels": [80, 95], "explain_top_k": 2},
           "ingest": {"retries": 0}}
    return raw | overrides


def _visible(conn, run_id: int) -> dict[str, int]:
    return {view: conn.execute(f"SELECT count(*) FROM {view} WHERE run_id = %s", (run_id,)).fetchone()[0]
            for view in _VIEWS}


def _steps(conn, run_id: int) -> None:
    [partition] = conn.execute("SELECT partition_key FROM run_partitions WHERE run_id = %s", (run_id,)).fetchall()
    for step in ("features", "backtest"):
        run_partition_step(conn, step, run_id=run_id, key=partition[0])
    select_champions(conn, run_id=run_id)
    for step in ("train", "predict"):
        run_partition_step(conn, step, run_id=run_id, key=partition[0])


def test_forecasts_become_visible_when_the_run_is_published_and_never_for_an_abandoned_run(database, tmp_path, conn):
    config = parse_config(_raw(tmp_path))
    ingest(database, config)
    run_id, _ = plan_run(conn, config, command="run")
    _steps(conn, run_id)
    stored = conn.execute("SELECT count(*) FROM forecasts WHERE run_id = %s", (run_id,)).fetchone()[0]
    assert stored == 3 * 3 * 7
    assert _visible(conn, run_id) == dict.fromkeys(_VIEWS, 0)  # written, not published: nothing shows
    assert finish_run(conn, run_id=run_id) == ("succeeded", None)
    shown = _visible(conn, run_id)
    assert shown["v_run_forecasts"] == stored and shown["v_forecast_intervals"] == 2 * stored
    assert shown["v_forecast_explanations"] > 0 and shown["champion_forecasts"] == 3 * 7
    conn.execute("UPDATE pipeline_runs SET status = 'abandoned' WHERE run_id = %s", (run_id,))
    assert _visible(conn, run_id) == dict.fromkeys(_VIEWS, 0)


def test_a_predict_step_that_dies_half_way_leaves_none_of_its_rows(database, tmp_path, conn, monkeypatch):
    from forecasting.store import results

    config = parse_config(_raw(tmp_path))
    ingest(database, config)
    run_id, [partition] = plan_run(conn, config, command="run")
    copy, calls = results._copy, []

    def dying(conn_, table, columns, frame):
        calls.append(table)
        if calls.count("forecasts") == 2:  # the second model's forecasts: the first model's rows are already sent
            raise MemoryError("killed half-way through the writes")
        return copy(conn_, table, columns, frame)

    monkeypatch.setattr(results, "_copy", dying)
    with pytest.raises(MemoryError):
        _steps(conn, run_id)
    assert conn.execute("SELECT count(*) FROM forecasts WHERE run_id = %s", (run_id,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM forecast_intervals WHERE run_id = %s", (run_id,)).fetchone()[0] == 0
    monkeypatch.setattr(results, "_copy", copy)
    run_partition_step(conn, "predict", run_id=run_id, key=partition.key)  # the retry writes the whole partition
    assert conn.execute("SELECT count(*) FROM forecasts WHERE run_id = %s", (run_id,)).fetchone()[0] == 3 * 3 * 7


def test_a_step_whose_task_died_is_abandoned_when_the_run_is_published(database, tmp_path, conn):
    config = parse_config(_raw(tmp_path, models={"enabled": ["naive"]}))
    ingest(database, config)
    run_id, [partition] = plan_run(conn, config, command="backtest", triggered_by="airflow:x")
    run_partition_step(conn, "features", run_id=run_id, key=partition.key)
    run_step_start(conn, run_id=run_id, step="backtest", partition_key=partition.key)  # its task is then killed
    status, error = finish_run(conn, run_id=run_id)
    assert status == "failed" and "backtest D:1/1: abandoned: the step's process ended" in error
    states = dict(conn.execute("SELECT step, status FROM run_steps WHERE run_id = %s", (run_id,)).fetchall())
    assert states == {"features": "succeeded", "backtest": "abandoned"}


def test_a_run_refused_while_planning_is_recorded_failed_with_its_reason(database, tmp_path, conn, capsys,
                                                                        monkeypatch):
    from forecasting.cli import main as cli_main

    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    raw = _raw(tmp_path, models={"enabled": ["naive"]})
    raw["preprocessing"]["horizon"] = 100000
    path = tmp_path / "refused.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert cli_main(["-q", "run", "--config", str(path)]) == 2
    assert "preprocessing.horizon" in capsys.readouterr().err
    status, error, finished = conn.execute("SELECT status, error, finished_at FROM pipeline_runs").fetchone()
    assert status == "failed" and finished is not None
    assert error.startswith("refused while planning: 'outcomes': preprocessing.horizon")
    # the next run leaves it as it is: it was not abandoned, it was refused
    execute(database, parse_config(_raw(tmp_path, models={"enabled": ["naive"]})), command="backtest")
    assert conn.execute("SELECT status, error FROM pipeline_runs WHERE run_id = 1").fetchone() == (status, error)


def test_a_model_version_names_the_run_that_registered_it_and_the_runs_that_reused_it(database, tmp_path, conn,
                                                                                     monkeypatch):
    config = parse_config(_raw(tmp_path, models={"enabled": ["naive", "linear"]}))
    ingest(database, config)
    first = execute(database, config, command="train").run_id
    # a concurrent run: it found nothing registered when it looked, fitted, and then found the first run's version
    # registered under the fingerprint's lock
    monkeypatch.setattr("forecasting.steps.train.model_version_find", lambda *args, **kwargs: None)
    concurrent = execute(database, config, command="train").run_id
    monkeypatch.undo()
    later = execute(database, config, command="train").run_id
    rows = conn.execute("SELECT run_id, model, reused FROM partition_models ORDER BY run_id, model").fetchall()
    assert rows == [(first, "linear", False), (first, "naive", False), (concurrent, "linear", True),
                    (concurrent, "naive", True), (later, "linear", True), (later, "naive", True)]
    summary = conn.execute("SELECT summary FROM run_steps WHERE run_id = %s AND step = 'train'",
                           (concurrent,)).fetchone()[0]
    assert summary["trained"] == [] and sorted(summary["reused"]) == ["linear", "naive"]
    versions = conn.execute("SELECT model, registered_by_run_id, reused_by_run_ids FROM v_model_versions "
                            "ORDER BY model").fetchall()
    assert versions == [("linear", first, [concurrent, later]), ("naive", first, [concurrent, later])]
    # a retried training step of the registering run finds its own version: that is not a reuse
    run_partition_step(conn, "train", run_id=first, key="D:1/1")
    assert conn.execute("SELECT bool_or(reused) FROM partition_models WHERE run_id = %s", (first,)).fetchone()[0] is \
        False


def test_two_runs_training_one_fingerprint_at_once_fit_it_once(database, tmp_path, conn, monkeypatch):
    config = parse_config(_raw(tmp_path, models={"enabled": ["naive", "linear"]}))
    ingest(database, config)
    fits: list[str] = []
    meet = threading.Barrier(2, timeout=120)

    def at_the_same_time(*args, **kwargs):
        meet.wait()  # both runs look the fingerprint up together: each would find nothing registered yet
        return fingerprint(*args, **kwargs)

    def counted(name, *args, **kwargs):  # the training step builds a model only to fit it at once
        fits.append(name)
        time.sleep(0.5)  # long enough for the other run to reach the registry while this one fits
        return build_model(name, *args, **kwargs)

    monkeypatch.setattr("forecasting.steps.train.fingerprint", at_the_same_time)
    monkeypatch.setattr("forecasting.steps.train.build_model", counted)
    runs: list[int] = []
    threads = [threading.Thread(target=lambda: runs.append(execute(database, config, command="train").run_id))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(runs) == 2
    assert sorted(fits) == ["linear", "naive"]  # each fitted by one run only
    rows = conn.execute("SELECT model, count(DISTINCT model_version_id), count(*) FILTER (WHERE reused) "
                        "FROM partition_models GROUP BY model ORDER BY model").fetchall()
    assert rows == [("linear", 1, 1), ("naive", 1, 1)]  # one version each, the other run reused it


def _unreachable(source: str):
    from forecasting.errors import RateLimitError, RetryableSourceError

    def fetch(self, params, *, series):
        if source == "google_trends":
            raise RateLimitError(f"Google Trends answered HTTP 429 Too Many Requests for {series!r}")
        raise RetryableSourceError(f"Yahoo Finance: connection refused for {series!r}")
    return fetch


def test_targets_that_failed_at_download_make_the_run_partial_everywhere_it_is_shown(database, tmp_path, conn,
                                                                                      capsys, monkeypatch):
    from fastapi.testclient import TestClient

    from forecasting.cli import main as cli_main
    from forecasting.sources.google_trends import GoogleTrendsSource
    from forecasting.sources.yahoo_finance import YahooFinanceSource
    from forecasting.web import create_app

    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    monkeypatch.setattr(GoogleTrendsSource, "fetch", _unreachable("google_trends"))
    monkeypatch.setattr(YahooFinanceSource, "fetch", _unreachable("yahoo_finance"))
    raw = _raw(tmp_path, models={"enabled": ["naive"]})
    raw["series"] = raw["series"][:2] + [{"name": "flu", "source": "google_trends", "params": {"keyword": "flu"}},
                                         {"name": "aapl", "source": "yahoo_finance", "params": {"ticker": "AAPL"}}]
    path = tmp_path / "mixed.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")

    assert cli_main(["-q", "run", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ingest run 1 partial: 2 new, 2 failed" in out
    assert out.rstrip().splitlines()[-1].startswith("pipeline run 1 partial (1 partition(s))")
    issues = out[out.index("series whose data is missing or stale"):].splitlines()[3:5]
    assert {line.split()[0] for line in issues} == {"flu", "aapl"}
    assert all("not stored: download failed in ingest run 1" in line for line in issues)
    assert conn.execute("SELECT status, n_data_issues, n_forecast_series FROM v_runs").fetchone() == ("partial", 2, 2)
    assert conn.execute("SELECT status FROM ingest_runs").fetchone()[0] == "partial"

    with TestClient(create_app(database)) as client:
        runs = client.get("/api/v1/runs").json()
        assert [r["status"] for r in runs["runs"]] == ["partial"] and runs["runs"][0]["n_data_issues"] == 2
        assert [r["status"] for r in runs["ingest_runs"]] == ["partial"]
        assert client.get("/api/v1/pipelines").json()["pipelines"][0]["last_run_status"] == "partial"
        targets = {s["series_name"]: s for s in client.get("/api/v1/series",
                                                            params={"pipeline": "outcomes"}).json()["series"]}
        assert set(targets) == {"s0", "s1", "flu", "aapl"}
        assert targets["flu"]["last_ingest_outcome"] == "failed" and targets["flu"]["current_version"] is None
        assert "HTTP 429 Too Many Requests" in targets["flu"]["last_ingest_error"]
        assert "connection refused" in targets["aapl"]["last_ingest_error"]
        assert targets["s0"]["last_ingest_outcome"] == "initial"
        page = client.get("/").text
        assert 'class="ingest-failed"' in page and "HTTP 429 Too Many Requests for &#39;flu&#39;" in page
        assert "Yahoo Finance: connection refused for &#39;aapl&#39;" in page
        assert re.search(r'<td class="status-partial">partial</td>', client.get("/runs").text)

    # s1's file disappears: its download fails, it is modelled on what was stored (its forecasts as before), and
    # the run says partial; when no target is fresh at all, it says failed
    (tmp_path / "s1.csv").unlink()
    assert cli_main(["-q", "run", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("pipeline run 2 partial (1 partition(s))")
    reason = conn.execute("SELECT reason FROM run_data_issues WHERE run_id = 2 AND series_name = 's1'").fetchone()[0]
    assert reason.startswith("download failed in ingest run 2: ") and "modelled on the data stored before" in reason
    assert conn.execute("SELECT n_forecast_series FROM v_runs WHERE run_id = 2").fetchone()[0] == 2
    (tmp_path / "s0.csv").unlink()
    assert cli_main(["-q", "run", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("pipeline run 3 failed")
    status, error = conn.execute("SELECT status, error FROM pipeline_runs WHERE run_id = 3").fetchone()
    assert status == "failed" and error.startswith("no target has fresh data: ")
    assert conn.execute("SELECT status FROM ingest_runs WHERE ingest_run_id = 3").fetchone()[0] == "failed"
