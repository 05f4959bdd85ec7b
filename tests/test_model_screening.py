"""Screening per model, end to end on the real embedded PostgreSQL: a series too short for one model is still
forecast by the models that can take it, and the reasons say which model needed what."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.run import execute

LOCAL = ["naive", "theta", "ets"]


def _csv(tmp_path, name: str, n: int, seed: int) -> str:
    t = np.arange(n)
    values = 50 + 3 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(seed).normal(0, 1, n).cumsum()
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                  "value": values.round(3)}).to_csv(path, index=False)
    return str(path)


def _config(tmp_path, models: list[str]):
    return parse_config({
        "name": "short",
        "series": [{"name": "long", "source": "csv", "params": {"path": _csv(tmp_path, "long", 200, 0)}},
                   {"name": "brief", "source": "csv", "params": {"path": _csv(tmp_path, "brief", 20, 1)}}],
        "preprocessing": {"horizon": 3, "target_lags": [1, 2, 7, 14]},
        "models": {"enabled": models, "lightgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5}},
        "backtest": {"modes": ["latest"]},
        "ingest": {"retries": 0},
    })


def _forecast_models(conn, run_id: int) -> dict[str, set[str]]:
    rows = conn.execute("SELECT s.name, m.name FROM forecasts f JOIN series s USING (series_id) "
                        "JOIN model_versions v USING (model_version_id) JOIN models m USING (model_id) "
                        "WHERE f.run_id = %s GROUP BY 1, 2", (run_id,)).fetchall()
    out: dict[str, set[str]] = {}
    for series, model in rows:
        out.setdefault(series, set()).add(model)
    return out


def test_models_that_need_no_lags_forecast_a_short_series(database, conn, tmp_path):
    report = execute(database, _config(tmp_path, LOCAL), command="run")
    assert report.status == "succeeded", report.skips
    assert _forecast_models(conn, report.run_id) == {"long": set(LOCAL), "brief": set(LOCAL)}
    # the 20-point series ends 180 days before the other and is still scored, on its own last points
    scored = dict(conn.execute(
        "SELECT s.name, count(DISTINCT b.window_no) FROM backtest_forecasts b JOIN series s USING (series_id) "
        "WHERE b.run_id = %s GROUP BY 1", (report.run_id,)).fetchall())
    assert scored["brief"] >= 1 and scored["long"] >= scored["brief"]
    assert set(report.champions["series"]) == {"long", "brief"}


def test_a_global_model_leaves_a_series_too_short_for_its_features_to_the_local_models(database, conn, tmp_path):
    report = execute(database, _config(tmp_path, [*LOCAL, "lightgbm_global"]), command="run")
    assert report.errors == {}
    assert _forecast_models(conn, report.run_id) == {"long": {*LOCAL, "lightgbm_global"}, "brief": set(LOCAL)}
    reasons = report.skips.set_index(["series", "model"])["reason"].to_dict()
    # lags up to 14 and the "auto" rolling windows of this panel (7 and 28): 29 points for one full row
    assert reasons[("brief", "lightgbm_global")] == "too short for lightgbm_global: 20 points, needs 29"
    assert report.skipped_series.empty  # no series was left out as a whole
    assert set(report.champions["series"]) == {"long", "brief"}
    brief = report.champions.set_index("series").loc["brief", "champion"]
    assert brief in LOCAL


@pytest.mark.parametrize("n_points", [1, 3])
def test_a_series_too_short_for_any_backtest_window_is_forecast_and_says_so(database, conn, tmp_path, n_points):
    config = _config(tmp_path, ["naive", "lightgbm_global"])
    raw = config.model_dump(mode="json")
    raw["series"][1]["params"]["path"] = _csv(tmp_path, "brief", n_points, 1)
    raw["series"][1]["frequency"] = "D"  # too few points to infer it
    report = execute(database, parse_config(raw), command="run")
    assert _forecast_models(conn, report.run_id)["brief"] == {"naive"}
    reasons = report.skips.set_index(["series", "model"])["reason"].to_dict()
    assert reasons[("brief", "naive")].startswith(
        f"no backtest: too short ({n_points} points, needs 4 for one window of 3)")
    champion = conn.execute("SELECT c.model, c.score, c.strategy FROM champions c JOIN series s USING (series_id) "
                            "WHERE s.name = 'brief' AND c.run_id = %s", (report.run_id,)).fetchone()
    assert champion == ("naive", None, "untested")  # nothing scored it: the readers are told so
    others = conn.execute("SELECT DISTINCT strategy FROM v_champions WHERE series_name <> 'brief' AND run_id = %s",
                          (report.run_id,)).fetchall()
    assert len(others) == 1 and others[0][0] in ("per_series", "robust", "pooled")
    assert conn.execute("SELECT count(*) FROM champion_forecasts WHERE series_name = 'brief'").fetchone()[0] == 3
