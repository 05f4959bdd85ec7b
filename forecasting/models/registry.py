"""Every model the pipeline can run, by name. Adding a model is one ``Forecaster`` subclass (with its
``from_config`` and ``settings``) plus one entry here; the steps, the config, the CLI and the DAGs' trigger
forms all read this table.

Only the standard library at module level: the Airflow DAG file reads the names at parse time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig
    from forecasting.models.base import Forecaster

__all__ = ["DEFAULT_MODELS", "MODELS", "build_model", "model_class", "model_factories", "model_settings"]

# name -> "module:Class", in the default preference order (ties in backtest scores go to the earlier model)
MODELS: dict[str, str] = {
    "naive": "forecasting.models.baselines:NaiveForecaster",
    "seasonal_naive": "forecasting.models.baselines:SeasonalNaiveForecaster",
    "naive2": "forecasting.models.statistical:Naive2Forecaster",
    "theta": "forecasting.models.statistical:ThetaForecaster",
    "ets": "forecasting.models.statistical:EtsForecaster",
    "linear": "forecasting.models.recursive:LinearGlobal",
    "random_forest": "forecasting.models.recursive:RandomForestGlobal",
    "lightgbm_global": "forecasting.models.recursive:LightGBMGlobal",
    "arima": "forecasting.models.arima:ArimaForecaster",
    "hybrid": "forecasting.models.hybrid:HybridForecaster",
    "ensemble": "forecasting.models.ensemble:EnsembleForecaster",
}

# The models a config without ``models.enabled`` runs, and what both benchmarks (benchmarks/accuracy.py,
# benchmarks/scale.py) measure when they are not given ``--models``: the one default set. The README's
# Benchmarks section gives the figures it was chosen by.
DEFAULT_MODELS: tuple[str, ...] = ("naive", "seasonal_naive", "theta", "ets", "linear", "lightgbm_global", "ensemble")


def model_class(name: str) -> type[Forecaster]:
    try:
        module, cls = MODELS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, config: PipelineConfig, *, has_exog: bool) -> Forecaster:
    """A new, unfitted model ``name`` set up from the config."""
    return model_class(name).from_config(config, has_exog=has_exog)


def model_settings(name: str, config: PipelineConfig, *, has_exog: bool) -> dict:
    """The settings of the config that shape model ``name`` once fitted (part of its fingerprint)."""
    return model_class(name).settings(config, has_exog=has_exog)


def model_factories(config: PipelineConfig, *, has_exog: bool) -> dict[str, Callable[[], Forecaster]]:
    """One zero-argument factory per enabled model, in the configured order."""
    return {name: (lambda name=name: build_model(name, config, has_exog=has_exog)) for name in config.models.enabled}
