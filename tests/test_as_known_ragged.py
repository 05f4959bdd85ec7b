"""The as-known backtest of a ragged panel: each series trains on its data as first known at its own cut-off,
and the feature series are read as first known at each window's cut-off too.

A series that ends earlier than the others (a delisted ticker, a failed download) has its window-0 cut-off
before the partition's. Its as-known training data must be the vintage known at that cut-off, not the one
known at the partition's cut-off (a date past its own end, where "first known" would fall back to today's
data and leak a later revision into the past).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.run import execute

HORIZON = 2
LONG, SHORT = 60, 55  # weeks: the short series ends five weeks, more than a horizon, before the long one


def _csv(tmp_path, name: str, weeks: int, *, factor: float = 1.0) -> str:
    t = np.arange(weeks)
    values = (100 + 0.5 * t + 3 * np.sin(2 * np.pi * t / 13)) * factor
    path = tmp_path / f"{name}.csv"
    ts = pd.date_range("2020-01-05", periods=weeks, freq="W-SUN")
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%d"), "value": values.round(4)}).to_csv(path, index=False)
    return str(path)


def _config(tmp_path):
    return parse_config({
        "name": "as-known-ragged",
        "series": [{"name": "long", "source": "csv", "params": {"path": _csv(tmp_path, "long", LONG)}},
                   {"name": "short", "source": "csv", "params": {"path": _csv(tmp_path, "short", SHORT)}}],
        "preprocessing": {"horizon": HORIZON},
        "models": {"enabled": ["naive"]},
        "backtest": {"n_windows": 1, "modes": ["latest", "as_known"]},
        "ingest": {"retries": 0},
    })


def _window0(conn, run_id: int, name: str) -> dict[str, tuple]:
    """mode: (cut-off, the naive forecast of step 1) of ``name``'s most recent backtest window."""
    rows = conn.execute(
        "SELECT f.mode, f.cutoff, f.yhat FROM backtest_forecasts f JOIN series s USING (series_id) "
        "WHERE f.run_id = %s AND s.name = %s AND f.window_no = 0 AND f.step = 1 AND f.model = 'naive'",
        (run_id, name)).fetchall()
    return {mode: (pd.Timestamp(cutoff), yhat) for mode, cutoff, yhat in rows}


def test_a_series_ending_early_is_backtested_as_known_at_its_own_cutoff(database, tmp_path, conn):
    config = _config(tmp_path)
    execute(database, config, command="run")
    original = pd.read_csv(tmp_path / "short.csv", parse_dates=["ts"]).set_index("ts")["value"]
    _csv(tmp_path, "short", SHORT, factor=1.2)  # the source renormalises the short series' whole history
    report = execute(database, config, command="run")
    assert {r.series_name: r.outcome for r in report.ingest.records}["short"] == "revised"

    windows = _window0(conn, report.run_id, "short")
    own_cutoff = original.index[-1 - HORIZON]
    assert windows["latest"][0] == windows["as_known"][0] == own_cutoff
    # naive repeats the last training value: today's data for 'latest', the first vintage for 'as_known'
    assert windows["latest"][1] == pytest.approx(1.2 * original[own_cutoff], rel=1e-6)
    assert windows["as_known"][1] == pytest.approx(original[own_cutoff], rel=1e-6)
    # the long series was never revised: both modes agree on it
    long_windows = _window0(conn, report.run_id, "long")
    assert long_windows["latest"] == long_windows["as_known"]


@pytest.mark.parametrize("driver_weeks", [LONG, SHORT], ids=["driver-to-the-end", "driver-ends-before-the-cutoffs"])
def test_feature_series_are_read_as_first_known_at_each_cutoff(database, tmp_path, conn, monkeypatch, driver_weeks):
    # a driver that stopped before the windows' cut-offs has no point at or after them: it must still be read as
    # the vintage first known then, not as today's (sql/migrations/0012)
    import forecasting.steps.backtest as backtest_step

    seen: dict[str, list[pd.DataFrame]] = {}

    def spy(panel, factories, spec, **kwargs):
        # what each window's models are given as feature series, per mode (kept for the assertions below)
        supplier = kwargs.get("exog_for_fold")
        mode = "as_known" if kwargs.get("panel_for_fold") is not None else "latest"
        result = run_backtest(panel, factories, spec, **kwargs)
        exog = kwargs["exog"]
        seen[mode] = [supplier(fold) if supplier else exog[exog["ts"] <= fold.cutoff] for fold in result.folds]
        return result

    from forecasting.backtesting.backtest import run_backtest

    monkeypatch.setattr(backtest_step, "run_backtest", spy)
    target = {"name": "target", "source": "csv", "params": {"path": _csv(tmp_path, "target", LONG)}}
    driver = {"name": "driver", "source": "csv", "role": "feature",
              "params": {"path": _csv(tmp_path, "driver", driver_weeks)}}
    config = parse_config({
        "name": "as-known-exog", "series": [target, driver],
        "preprocessing": {"horizon": HORIZON, "target_lags": [1, 2], "feature_lags": [1]},
        "models": {"enabled": ["naive", "linear"]},
        "backtest": {"n_windows": 2, "modes": ["latest", "as_known"]},
        "ingest": {"retries": 0},
    })
    execute(database, config, command="run")
    original = pd.read_csv(tmp_path / "driver.csv", parse_dates=["ts"]).set_index("ts")["value"]
    _csv(tmp_path, "driver", driver_weeks, factor=1.2)  # the feature series' history is renormalised
    _csv(tmp_path, "target", LONG + 1)  # and the target grows by a week
    seen.clear()
    report = execute(database, config, command="run")
    assert report.errors == {}

    assert len(seen["latest"]) == len(seen["as_known"]) == 2
    for latest, as_known in zip(seen["latest"], seen["as_known"], strict=True):
        assert set(as_known["series"]) == {"driver"} and as_known["ts"].max() == latest["ts"].max()
        first = as_known.set_index("ts")["y"]
        now = latest.set_index("ts")["y"]
        assert first.to_numpy() == pytest.approx(original[first.index].to_numpy(), rel=1e-6)  # the first vintage
        assert now.to_numpy() == pytest.approx(1.2 * original[now.index].to_numpy(), rel=1e-6)  # today's data
