"""ARIMA plus a global LightGBM on its residuals: the linear dynamics from ARIMA, what is left from trees.

The residual model learns from every series' in-sample ARIMA errors at once, with the usual lag features;
its forecast of the next residuals is added to the ARIMA forecast. Whether the hybrid beats either part is
decided per series by the backtest, not by a fixed weight.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.models.arima import ArimaForecaster
from forecasting.models.base import Forecaster
from forecasting.models.recursive import LightGBMGlobal

__all__ = ["HybridForecaster"]


class HybridForecaster(Forecaster):
    name = "hybrid"
    kind = "global"

    @classmethod
    def from_config(cls, config, *, has_exog: bool) -> HybridForecaster:
        from forecasting.models.recursive import feature_spec

        # its parts read their own models' sections: models.arima and models.lightgbm
        settings = ArimaForecaster.settings(config)
        order = settings.order if settings.order == "auto" else tuple(settings.order)
        return cls(ArimaForecaster(order=order, max_points=settings.max_points,
                                   max_p=settings.max_p, max_q=settings.max_q),
                   LightGBMGlobal(feature_spec(config, has_exog=has_exog), transforms=("scale",),
                                  params=LightGBMGlobal.settings(config).estimator_params(), seed=config.models.seed))


    @classmethod
    def min_points(cls, config, *, freq: str | None, lengths: pd.Series) -> int:
        from forecasting.models.recursive import feature_need

        # the residual model takes the config's features, never tuned lags
        return feature_need(config, freq=freq, lengths=lengths)

    def __init__(self, arima: ArimaForecaster, residual_model: LightGBMGlobal) -> None:
        super().__init__()
        self.arima = arima
        self.residual_model = residual_model

    def _residuals(self, panel: pd.DataFrame) -> pd.DataFrame:
        pieces = []
        for name, group in panel.groupby(SERIES, sort=True):
            fitted = self.arima.fitted_values(name)
            if fitted is None:  # ARIMA fell back to naive: the residual model sees the naive errors
                fitted = np.concatenate([[group[Y].iloc[0]], group[Y].to_numpy()[:-1]])
            tail = group.iloc[len(group) - len(fitted) :]
            # the first one-step prediction has no history; leaving it out keeps a start-up error out of training
            pieces.append(
                pd.DataFrame({SERIES: name, TS: tail[TS].to_numpy(), Y: tail[Y].to_numpy() - fitted}).iloc[1:]
            )
        return pd.concat(pieces, ignore_index=True)

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        self.arima.fit(panel, freq=freq)
        self.residual_model.fit(self._residuals(panel), freq=freq, exog=exog)
        self.fallbacks = {
            **self.arima.fallbacks,
            **{k: f"residual model: {v}" for k, v in self.residual_model.fallbacks.items()},
        }
        return self

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        base = self.arima.predict(horizon)
        residual = self.residual_model.predict(horizon, exog=exog)[[SERIES, STEP, YHAT]]
        merged = base.merge(residual, on=[SERIES, STEP], how="left", suffixes=("", "_residual"))
        merged[YHAT] = merged[YHAT] + merged["yhat_residual"].fillna(0.0)
        return merged.drop(columns="yhat_residual")
