"""The demo config's quarterly series (statsmodels' us_cpi and us_realgdp, offline) through the whole pipeline: every
interval level gets its own bound at every step, though a few backtest windows give few errors, and the coverage
figures say how many errors they rest on."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.config import load_config, parse_config
from forecasting.run import execute

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"


@pytest.fixture
def demo_run(database):
    raw = load_config(DEMO).model_dump(mode="json")
    # the quarterly partition is where the errors are few; co2 (weekly, long) only adds minutes here
    raw["series"] = [s for s in raw["series"] if s["name"] != "co2"]
    report = execute(database, parse_config(raw), command="run")
    assert report.status == "succeeded", report.errors
    return report


def test_each_level_has_its_own_bound_and_coverage_says_on_how_many_errors(demo_run, conn):
    # every step: the 95% interval strictly contains the 80% one (the issue: us_cpi's lightgbm_global had the same
    # bounds at steps 1 and 3-8, 214.91-217.99 at step 1, and us_realgdp at steps 3, 4, 6, 7, 8)
    rows = conn.execute(
        "SELECT a.series_name, a.model, a.step, a.lower, a.upper, b.lower, b.upper FROM v_forecast_intervals a "
        "JOIN v_forecast_intervals b USING (run_id, model_version_id, series_name, source, ts) "
        "WHERE a.level = 80 AND b.level = 95 AND a.run_id = %s ORDER BY 1, 2, 3", (demo_run.run_id,)).fetchall()
    assert {r[0] for r in rows} == {"us_cpi", "us_realgdp"}
    n_models = len(load_config(DEMO).models.enabled)  # the default set: the demo names no models
    assert n_models >= 5 and len(rows) == 2 * n_models * 8  # two series, every model, eight steps
    for series, model, step, lo80, hi80, lo95, hi95 in rows:
        assert lo80 < hi80, (series, model, step)  # real series: the backtest errors are never all zero
        assert lo95 < lo80 and hi80 < hi95, (series, model, step, lo80, lo95, hi80, hi95)

    # the coverage figures say how many errors they rest on (one run of the demo serves both checks)
    board = conn.execute(
        "SELECT model, max(value) FILTER (WHERE metric = 'coverage_80'), max(value) FILTER (WHERE metric = "
        "'coverage_95'), max(value) FILTER (WHERE metric = 'coverage_n') FROM v_backtest_metrics WHERE run_id = %s "
        "AND mode = 'latest' AND series_name = 'us_cpi' AND step IS NULL GROUP BY model ORDER BY model",
        (demo_run.run_id,)).fetchall()
    errors = dict(conn.execute(
        "SELECT model, count(*) FROM v_backtest_forecasts WHERE run_id = %s AND mode = 'latest' "
        "AND series_name = 'us_cpi' GROUP BY model", (demo_run.run_id,)).fetchall())
    assert len(board) == len(load_config(DEMO).models.enabled)
    for model, coverage_80, coverage_95, n in board:
        assert n == errors[model] == 3 * 8  # three windows of eight steps, each checked on the other two windows
        assert coverage_95 >= coverage_80
        assert (coverage_80 * n) == pytest.approx(round(coverage_80 * n))  # a share of those n errors
    per_step = conn.execute("SELECT DISTINCT value FROM v_backtest_metrics WHERE run_id = %s AND mode = 'latest' "
                            "AND series_name = 'us_cpi' AND step IS NOT NULL AND metric = 'coverage_n'",
                            (demo_run.run_id,)).fetchall()
    assert per_step == [(3.0,)]
    pooled = conn.execute("SELECT DISTINCT value FROM v_backtest_metrics WHERE run_id = %s AND mode = 'latest' "
                          "AND series_name IS NULL AND step IS NULL AND metric = 'coverage_n'",
                          (demo_run.run_id,)).fetchall()
    assert pooled == [(2 * 3 * 8,)]  # over both series and every step: a count, summed
