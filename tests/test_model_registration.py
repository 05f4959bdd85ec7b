"""A model added through the public registration path runs through backtest, train and predict like a built-in
one, against the real database."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.errors import ConfigError
from forecasting.models.registry import MODELS, model_settings
from forecasting.run import execute


def _raw(tmp_path, models: list[str], **sections: dict) -> dict:
    t = np.arange(60)
    path = tmp_path / "trend.csv"
    pd.DataFrame({"ts": pd.date_range("2024-01-07", periods=60, freq="W-SUN").strftime("%Y-%m-%d"),
                  "value": (10 + 0.5 * t + np.random.default_rng(0).normal(0, 0.1, 60)).round(3)}).to_csv(path,
                                                                                                         index=False)
    return {"name": "plugin", "series": [{"name": "trend", "source": "csv", "params": {"path": str(path)}}],
            "preprocessing": {"horizon": 4}, "models": {"enabled": models, **sections},
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
    with pytest.raises(ConfigError, match=re.escape("models.toy_drift: unknown key")):
        parse_config(_raw(tmp_path, ["naive"], toy_drift={"damping": 0.9}))
    import toy_models  # registering is importing the module that defines the model

    assert MODELS["toy_drift"] == "toy_models:DriftForecaster"
    # the plug-in's section is parsed by the settings model it declares, with the usual messages
    too_much = "models.toy_drift.damping: Input should be less than or equal to 1"
    with pytest.raises(ConfigError, match=re.escape(too_much)):
        parse_config(_raw(tmp_path, ["naive", "toy_drift"], toy_drift={"damping": 2}))
    with pytest.raises(ConfigError, match=re.escape("models.toy_drift.dampening: unknown key")):
        parse_config(_raw(tmp_path, ["naive", "toy_drift"], toy_drift={"dampening": 0.9}))
    default = parse_config(_raw(tmp_path, ["naive", "toy_drift"]))
    assert default.models.section("toy_drift") == toy_models.DriftSettings()
    assert model_settings("toy_drift", default, has_exog=False) == {"class": "DriftForecaster", "damping": 1.0}

    config = parse_config(_raw(tmp_path, ["naive", "toy_drift"], toy_drift={"damping": 0.9}))
    assert toy_models.DriftForecaster.settings(config) == toy_models.DriftSettings(damping=0.9)
    assert model_settings("toy_drift", config, has_exog=False) == {"class": "DriftForecaster", "damping": 0.9}
    report = execute(database, config, command="run")
    assert report.status == "succeeded" and report.skips.empty
    backtested = conn.execute("SELECT count(*) FROM backtest_forecasts WHERE model = 'toy_drift'").fetchone()[0]
    assert backtested == 2 * 4  # two windows of four steps
    # a straight line: drift beats naive, so the plug-in is the champion and its forecasts are published
    assert report.champions.set_index("series").loc["trend", "champion"] == "toy_drift"
    rows = conn.execute("SELECT step, yhat FROM champion_forecasts ORDER BY step").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert all(b[1] > a[1] for a, b in zip(rows, rows[1:], strict=False))
    # the version records what the constructor received from the plug-in's section
    version = conn.execute("SELECT v.params FROM model_versions v JOIN models m USING (model_id) "
                           "WHERE m.name = 'toy_drift'").fetchone()[0]
    assert version["model"] == {"class": "DriftForecaster", "damping": 0.9}
