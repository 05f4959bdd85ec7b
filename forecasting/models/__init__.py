"""Models by name: each configured model becomes a factory the backtest and training steps call."""

from __future__ import annotations

from collections.abc import Callable

from forecasting.config import PipelineConfig
from forecasting.features import FeatureSpec
from forecasting.models.base import Forecaster

__all__ = ["Forecaster", "feature_spec", "model_factories"]


def feature_spec(config: PipelineConfig, *, has_exog: bool) -> FeatureSpec:
    pre = config.preprocessing
    return FeatureSpec(
        lags=tuple(pre.target_lags),
        rolling_windows=tuple(pre.rolling_windows),
        exog_lags=tuple(pre.feature_lags) if has_exog else (),
        calendar=pre.calendar,
        technical=pre.technical,
    )


def model_factories(config: PipelineConfig, *, has_exog: bool) -> dict[str, Callable[[], Forecaster]]:
    """One zero-argument factory per enabled model, in the configured order."""
    from forecasting.models.arima import ArimaForecaster
    from forecasting.models.baselines import NaiveForecaster, SeasonalNaiveForecaster
    from forecasting.models.recursive import LightGBMGlobal, LinearGlobal, RandomForestGlobal

    spec = feature_spec(config, has_exog=has_exog)
    models = config.models
    transforms = tuple(config.preprocessing.target_transforms)
    arima_order = models.arima.order if models.arima.order == "auto" else tuple(models.arima.order)
    available: dict[str, Callable[[], Forecaster]] = {
        "naive": NaiveForecaster,
        "seasonal_naive": SeasonalNaiveForecaster,
        "linear": lambda: LinearGlobal(spec, transforms=transforms, params=models.linear, seed=models.seed),
        "random_forest": lambda: RandomForestGlobal(
            spec, transforms=transforms, params=models.random_forest, seed=models.seed
        ),
        "lightgbm_global": lambda: LightGBMGlobal(spec, transforms=transforms, params=models.lightgbm,
                                                  seed=models.seed),
        "arima": lambda: ArimaForecaster(order=arima_order, seasonal_order="auto" if models.arima.seasonal else None,
                                         max_points=models.arima.max_points),
    }
    if "hybrid" in models.enabled:
        from forecasting.models.hybrid import HybridForecaster

        available["hybrid"] = lambda: HybridForecaster(
            ArimaForecaster(order=arima_order, max_points=models.arima.max_points),
            LightGBMGlobal(spec, transforms=("scale",), params=models.lightgbm, seed=models.seed),
        )
    return {name: available[name] for name in models.enabled}
