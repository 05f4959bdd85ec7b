"""What a registered model version depends on: exactly what its constructor received, so a change to anything
its fit uses registers a new version, and nothing else does."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.config import parse_config
from forecasting.ingest.pipeline import ingest
from forecasting.models.registry import build_model, model_settings
from forecasting.run import execute


def _raw(tmp_path, *, horizon: int, transforms="auto") -> dict:
    t = np.arange(120)
    series = []
    for i in range(2):
        values = 100 + 5 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(i).normal(0, 1, 120).cumsum()
        path = tmp_path / f"s{i}.csv"
        pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=120).strftime("%Y-%m-%d"),
                      "value": values.round(3)}).to_csv(path, index=False)
        series.append({"name": f"s{i}", "source": "csv", "params": {"path": str(path)}})
    return {"name": "versions", "series": series,
            "preprocessing": {"horizon": horizon, "target_lags": [1, 2, 7], "target_transforms": transforms},
            "models": {"enabled": ["naive", "lightgbm_global"],
                       "lightgbm": {"n_estimators": 15, "num_leaves": 7, "min_child_samples": 5}},
            "backtest": {"n_windows": 1, "modes": ["latest"]}, "ingest": {"retries": 0}}


def _versions(conn, model: str) -> list[int]:
    rows = conn.execute("SELECT v.model_version_id FROM model_versions v JOIN models m USING (model_id) "
                        "WHERE m.name = %s ORDER BY 1", (model,)).fetchall()
    return [r[0] for r in rows]


def test_the_settings_are_what_the_constructor_received(tmp_path):
    config = parse_config(_raw(tmp_path, horizon=4))
    settings = model_settings("lightgbm_global", config, has_exog=False)
    model = build_model("lightgbm_global", config, has_exog=False)
    assert settings["holdout"] == model.holdout == 4  # "auto" transforms are chosen on a holdout of the horizon
    assert settings["params"] == model.params and settings["class"] == "LightGBMGlobal"
    fixed = parse_config(_raw(tmp_path, horizon=4, transforms=["scale"]))
    assert model_settings("lightgbm_global", fixed, has_exog=False)["holdout"] is None
    hybrid = model_settings("hybrid", config, has_exog=False)
    assert hybrid["residual_model"]["transforms"] == ["scale"]  # what it is given, not the config's "auto"
    assert "n_jobs" not in model_settings("arima", config, has_exog=False)  # speed, not what is learnt


def test_a_new_horizon_registers_a_new_lightgbm_version_and_predict_registers_none(database, conn, tmp_path):
    ingest(database, parse_config(_raw(tmp_path, horizon=4)))
    first = execute(database, parse_config(_raw(tmp_path, horizon=4)), command="train")
    assert first.status == "succeeded"
    lightgbm, naive = _versions(conn, "lightgbm_global"), _versions(conn, "naive")
    assert len(lightgbm) == len(naive) == 1

    execute(database, parse_config(_raw(tmp_path, horizon=4)), command="train")
    assert _versions(conn, "lightgbm_global") == lightgbm  # same data, settings and code: reused

    execute(database, parse_config(_raw(tmp_path, horizon=6)), command="train")
    assert len(_versions(conn, "lightgbm_global")) == 2  # its transforms were chosen on the old holdout
    assert _versions(conn, "naive") == naive  # nothing naive uses changed

    predicted = execute(database, parse_config(_raw(tmp_path, horizon=9)), command="predict")
    assert predicted.status == "succeeded"
    assert len(_versions(conn, "lightgbm_global")) == 2 and _versions(conn, "naive") == naive
    steps = conn.execute("SELECT DISTINCT step FROM forecasts f JOIN series s USING (series_id) "
                         "WHERE f.run_id = %s", (predicted.run_id,)).fetchall()
    assert max(s[0] for s in steps) == 9
