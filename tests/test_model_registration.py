"""A model added through the public registration path runs through backtest, train and predict like a built-in
one, against the real database."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.errors import ConfigError
from forecasting.models.registry import MODELS, model_settings
from forecasting.run import execute


def _raw(tmp_path, models: list[str]) -> dict:
    t = np.arange(60)
    path = tmp_path / "trend.csv"
    pd.DataFrame({"ts": pd.date_range("2024-01-07", periods=60, freq="W-SUN").strftime("%Y-%m-%d"),
                  "value": (10 + 0.5 * t + np.random.default_rng(0).normal(0, 0.1, 60)).round(3)}).to_csv(path,
                                                                                                         index=False)
    return {"name": "plugin", "series": [{"name": "trend", "source": "csv", "params": {"path": str(path)}}],
            "preprocessing": {"horizon": 4}, "models": {"enabled": models},
            "backtest": {"n_windows": 2, "modes": ["latest"]}, "ingest": {"retries": 0}}


@pytest.fixture
def unregistered():
    """The registry as it was before the test: a plug-in registered here must not leak into other tests."""
    before = dict(MODELS)
    yield
    MODELS.clear()
    MODELS.update(before)
    sys.modules.pop("toy_models", None)


def test_a_registered_model_runs_every_step(database, conn, tmp_path, unregistered):
    with pytest.raises(ConfigError, match="unknown model 'toy_drift'"):
        parse_config(_raw(tmp_path, ["naive", "toy_drift"]))
    import toy_models  # noqa: F401 - registering is importing the module that defines the model

    assert MODELS["toy_drift"] == "toy_models:DriftForecaster"
    config = parse_config(_raw(tmp_path, ["naive", "toy_drift"]))
    assert model_settings("toy_drift", config, has_exog=False) == {"class": "DriftForecaster", "damping": 1.0}
    report = execute(database, config, command="run")
    assert report.status == "succeeded" and report.skips.empty
    backtested = conn.execute("SELECT count(*) FROM backtest_forecasts WHERE model = 'toy_drift'").fetchone()[0]
    assert backtested == 2 * 4  # two windows of four steps
    # a straight line: drift beats naive, so the plug-in is the champion and its forecasts are published
    assert report.champions.set_index("series").loc["trend", "champion"] == "toy_drift"
    rows = conn.execute("SELECT step, yhat FROM champion_forecasts ORDER BY step").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert all(b[1] > a[1] for a, b in zip(rows, rows[1:], strict=False))
    version = conn.execute("SELECT v.params FROM model_versions v JOIN models m USING (model_id) "
                           "WHERE m.name = 'toy_drift'").fetchone()[0]
    assert version["model"] == {"class": "DriftForecaster", "damping": 1.0}
