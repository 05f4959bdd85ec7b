"""Naive baselines: the benchmarks every other model has to beat (M4's Naive2 is the naive forecast for weekly)."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.frequency import season_length
from forecasting.models.base import Forecaster

__all__ = ["NaiveForecaster", "SeasonalNaiveForecaster", "future_frame"]


def future_frame(last: pd.DataFrame, freq: str, horizon: int) -> pd.DataFrame:
    """Rows (series, ts, step) for ``horizon`` steps after each series' last timestamp in ``last``."""
    steps = np.tile(np.arange(1, horizon + 1), len(last))
    series = np.repeat(last[SERIES].to_numpy(), horizon)
    grid = [pd.date_range(ts, periods=horizon + 1, freq=freq)[1:] for ts in last[TS]]
    ts = np.concatenate([g.to_numpy() for g in grid]) if grid else np.array([], dtype="datetime64[ns]")
    return pd.DataFrame({SERIES: series, TS: ts.astype("datetime64[ns]"), STEP: steps})


class NaiveForecaster(Forecaster):
    """Every future step equals the last observed value."""

    name = "naive"

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        self.freq_ = freq
        self.last_ = panel.groupby(SERIES, sort=True).tail(1)[[SERIES, TS, Y]].reset_index(drop=True)
        return self

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        out = future_frame(self.last_, self.freq_, horizon)
        out[YHAT] = np.repeat(self.last_[Y].to_numpy(), horizon)
        return out


class SeasonalNaiveForecaster(Forecaster):
    """Every future step equals the value one season earlier; series shorter than a season use naive."""

    name = "seasonal_naive"

    def __init__(self, season: int | None = None) -> None:
        super().__init__()
        self.season = season

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        self.freq_ = freq
        self.season_ = self.season or season_length(freq)
        tails = panel.groupby(SERIES, sort=True).tail(self.season_)
        counts = tails.groupby(SERIES, sort=True).size()
        short = counts[counts < self.season_].index
        for name in short:
            self.fallbacks[name] = f"shorter than one season ({counts[name]} < {self.season_} points): naive"
        self.tails_ = {name: group[Y].to_numpy() for name, group in tails.groupby(SERIES, sort=True)}
        self.last_ = panel.groupby(SERIES, sort=True).tail(1)[[SERIES, TS]].reset_index(drop=True)
        return self

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        out = future_frame(self.last_, self.freq_, horizon)
        values = []
        for name in self.last_[SERIES]:
            tail = self.tails_[name]
            if len(tail) < self.season_:
                values.append(np.repeat(tail[-1], horizon))
            else:
                values.append(np.resize(tail, horizon))  # repeats the last season cyclically
        out[YHAT] = np.concatenate(values) if values else np.array([], dtype=float)
        return out
