"""A model defined outside the package, as a user's plug-in would be: registered by ``register_model``, with its own
section of ``models`` in the config (``models.toy_drift``) parsed by its own settings model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y, future_timestamps
from forecasting.models.base import Forecaster, ModelSettings
from forecasting.models.registry import register_model


class DriftSettings(ModelSettings):
    """``models.toy_drift``: how much of the mean change is carried forward."""

    damping: float = Field(default=1.0, ge=0, le=1)


@register_model
class DriftForecaster(Forecaster):
    """The last value plus the series' mean change per step (the random walk with drift)."""

    name = "toy_drift"
    settings_key = "toy_drift"
    settings_model = DriftSettings

    def __init__(self, damping: float = 1.0) -> None:
        super().__init__()
        self.damping = damping

    @classmethod
    def from_config(cls, config, *, has_exog: bool) -> DriftForecaster:
        return cls(damping=cls.settings(config).damping)

    @classmethod
    def min_points(cls, config, *, freq, lengths) -> int:
        return 2  # one change to average

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> DriftForecaster:
        self.freq_ = freq
        grouped = panel.groupby(SERIES, sort=True)
        self.last_ = grouped.tail(1).set_index(SERIES)[[TS, Y]]
        self.drift_ = grouped[Y].apply(lambda y: float(np.diff(y.to_numpy()).mean()))
        return self

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        rows = [pd.DataFrame({SERIES: series, TS: future_timestamps(last[TS], self.freq_, horizon),
                              STEP: np.arange(1, horizon + 1),
                              YHAT: last[Y] + self.damping * self.drift_[series] * np.arange(1, horizon + 1)})
                for series, last in self.last_.iterrows()]
        return pd.concat(rows, ignore_index=True)
