"""M4's Naive2 and seasonality test: the published figures on real files, and a seasonal case worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting.m4 import m4_scores, naive2_forecasts, owa_table, read_m4
from forecasting.features.panel import SERIES, TS, YHAT, Y
from forecasting.models.seasonality import adjust, is_seasonal
from forecasting.models.statistical import Naive2Forecaster

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _scores(directory: Path, frequency: str) -> pd.Series:
    if not (directory / f"{frequency}-train.csv").is_file():
        pytest.fail(f"{frequency} data missing in {directory} (the shared data folder beside the clone)")
    train, test = read_m4(directory, frequency)
    forecasts = naive2_forecasts(train, frequency).assign(model="naive2")
    return owa_table(m4_scores(forecasts, train, test, frequency)).loc["naive2"]


def test_naive2_on_m4_weekly_is_the_naive_forecast_and_matches_the_published_figures():
    row = _scores(DATA / "m4", "Weekly")
    assert (round(row.smape, 3), round(row.mase, 3), row.owa) == (9.161, 2.777, 1.0)


def test_naive2_on_m3_quarterly_deseasonalises_and_matches_the_published_figures():
    row = _scores(DATA / "m3-quarterly", "Quarterly")
    assert (round(row.smape, 3), round(row.mase, 3)) == (10.029, 1.252)


def _panel(values: np.ndarray, freq: str = "QS-JAN") -> pd.DataFrame:
    ts = pd.date_range("2000-01-01", periods=len(values), freq=freq)
    return pd.DataFrame({SERIES: "s", TS: ts, Y: values.astype(float)})


def test_seasonal_series_by_hand():
    # level 10 times fixed quarterly factors: the 2x4 centred moving average is exactly 10, so the classical
    # decomposition recovers the factors, the adjusted series is flat at 10, and 22 points end on position 1
    # of the cycle, so the forecast continues with factors 3, 4, 1, 2: 9, 11, 8, 12, then 9 again.
    factors = np.array([0.8, 1.2, 0.9, 1.1])
    y = 10 * np.resize(factors, 22)
    assert is_seasonal(y, 4)
    adjusted = adjust(y, 4)
    np.testing.assert_allclose(adjusted.adjusted, 10.0)
    forecast = Naive2Forecaster(season=4).fit(_panel(y), freq="QS-JAN").predict(5)
    np.testing.assert_allclose(forecast[YHAT], [9.0, 11.0, 8.0, 12.0, 9.0])


def test_seasonality_test_follows_the_m4_formula():
    rng = np.random.default_rng(3)
    y = 50 + np.cumsum(rng.normal(size=60)) + 3 * np.sin(np.arange(60) * np.pi / 2)
    z = y - y.mean()
    r = np.array([np.sum(z[k:] * z[:-k]) / np.sum(z * z) for k in range(1, 5)])
    limit = 1.645 / np.sqrt(60) * np.sqrt(1 + 2 * np.sum(r[:3] ** 2))
    assert is_seasonal(y, 4) == (abs(r[3]) > limit)


@pytest.mark.parametrize("values, m, reason", [
    (np.resize([8.0, 12.0, 9.0, 11.0], 11), 4, "fewer than 3 periods"),
    (np.resize([-1.0, 3.0, -2.0, 4.0], 24), 4, "not positive"),
    (np.linspace(1, 30, 30), 1, "no period"),
])
def test_naive2_falls_back_to_naive(values, m, reason):
    forecast = Naive2Forecaster(season=m).fit(_panel(values), freq="QS-JAN").predict(3)
    np.testing.assert_allclose(forecast[YHAT], values[-1], err_msg=reason)
