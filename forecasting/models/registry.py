"""Every model the pipeline can run, by name. Adding a model is one ``Forecaster`` subclass (with its
``from_config``, its ``settings_key`` and ``settings_model`` when the config has a section for it, and
``min_points`` when it needs more than one point) plus one entry here; the steps, the config (its ``models``
sections, ``settings_sections``), the CLI and the DAGs' trigger forms all read this table.

Only the standard library at module level: the Airflow DAG file reads the names at parse time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig
    from forecasting.models.base import Forecaster

__all__ = ["DEFAULT_MODELS", "MODELS", "build_model", "model_class", "model_factories", "model_settings",
           "register_model", "settings_sections"]

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


def register_model(cls: type[Forecaster]) -> type[Forecaster]:
    """Make a ``Forecaster`` subclass defined outside this package available by its ``name`` to configs, steps and
    benchmarks (usable as a class decorator). Its module must be importable wherever the model runs (an
    Airflow worker unpickles registered versions by module path)."""
    if not getattr(cls, "name", None):
        raise ValueError(f"{cls.__qualname__} needs a class attribute 'name' to be registered")
    MODELS[cls.name] = f"{cls.__module__}:{cls.__qualname__}"
    return cls


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
    """What model ``name``'s constructor receives from the config (``base.model_params``): recorded with each
    model version and part of its fingerprint."""
    from forecasting.models.base import model_params

    return model_params(build_model(name, config, has_exog=has_exog))


def model_factories(config: PipelineConfig, *, has_exog: bool) -> dict[str, Callable[[], Forecaster]]:
    """One zero-argument factory per enabled model, in the configured order."""
    return {name: (lambda name=name: build_model(name, config, has_exog=has_exog)) for name in config.models.enabled}


def settings_sections() -> dict[str, type[Forecaster]]:
    """Section name of ``models`` in the config -> the registered model class that declares it (the first in
    ``MODELS`` order when several share one, which must then parse it with the same ``settings_model``). Imports
    the model classes, which keep their heavy libraries (statsmodels, LightGBM) to the functions that fit."""
    found: dict[str, type[Forecaster]] = {}
    for name in MODELS:
        cls = model_class(name)
        key = cls.settings_key
        if key is None:
            continue
        if key in found and found[key].settings_model is not cls.settings_model:
            raise TypeError(f"models {found[key].name!r} and {name!r} both declare the config section {key!r} "
                            "with different settings models")
        found.setdefault(key, cls)
    return found
