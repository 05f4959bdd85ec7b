"""The one interface every model implements: fit on a training panel, predict ``horizon`` steps past it.

A model owns its settings: it declares the section of ``models`` in the config that configures it
(``settings_key``) and the pydantic model that parses that section (``settings_model``), as a source declares its
``params_model``; the config reads these declarations from the registry and keeps no per-model classes. The
model's ``from_config`` passes its parsed section (``settings``) and the run context it needs (horizon, seed,
exogenous features) to its constructor.

A model's fingerprint is what its constructor received: the base class records the arguments of every
constructor call (``model_params``), so the fingerprint that decides whether a registered version can be
reused is built from exactly what the model was given, never from a second description of it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

__all__ = ["Forecaster", "ModelName", "ModelSettings", "model_params"]


class ModelSettings(BaseModel):
    """Base of a model's settings section (``Forecaster.settings_model``): unknown keys are configuration errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_model(name: str) -> str:
    # read at validation time, so a model registered after import (register_model) is accepted too
    from forecasting.models.registry import MODELS

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return name


# a model name of the registry, in a config
ModelName = Annotated[str, AfterValidator(_known_model)]


class Forecaster(ABC):
    """A forecasting model over a panel of series (``forecasting.features.panel`` format).

    ``fit`` receives the training panel (columns series, ts, y; sorted; regular at ``freq``) and, when the
    configuration has feature series, ``exog``: a panel of those series (series = feature name). ``predict``
    returns, for every series seen in ``fit``, the ``horizon`` steps after its last training timestamp:
    columns series, ts, step (1..horizon), yhat.

    A model that cannot fit a series must not raise: it falls back (usually to the naive forecast) and
    records the series and the reason in ``fallbacks``, so one bad series never stops the others.

    A subclass sets ``name`` and ``kind``, implements ``fit``/``predict`` and, when the config has settings for
    it, declares ``settings_key`` and ``settings_model`` and implements ``from_config``; it is then one entry of
    ``forecasting.models.registry.MODELS``.
    """

    name: ClassVar[str]
    # 'global': one model learns from every series of a partition; 'local': one fit per series inside it
    kind: ClassVar[Literal["global", "local"]] = "local"
    # explained with SHAP after prediction (tree models exposing ``last_X_``)
    explainable: ClassVar[bool] = False
    # constructor arguments that change how fast a fit runs, never what it learns: left out of the fingerprint
    runtime_params: ClassVar[frozenset[str]] = frozenset({"n_jobs"})
    # the section of ``models`` in the config that sets this model up (None: it has none), and the pydantic model
    # that parses it (a ``ModelSettings``; for estimator parameters ``forecasting.models.recursive.EstimatorSettings``)
    settings_key: ClassVar[str | None] = None
    settings_model: ClassVar[type[BaseModel] | None] = None
    # whether the section may hold a ``search`` for 'forecasting tune': declared by the settings model
    # (``EstimatorSettings.tunable``), which also validates the search space against the estimator's parameters
    tunable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)  # type: ignore[method-assign]
        if "tunable" not in cls.__dict__:
            cls.tunable = bool(getattr(cls.settings_model, "tunable", False))
        if (cls.settings_key is None) != (cls.settings_model is None):
            raise TypeError(f"{cls.__qualname__} declares settings_key and settings_model together, or neither")

    @classmethod
    def settings(cls, config: PipelineConfig) -> Any:
        """This model's section of ``config.models``, parsed by its ``settings_model`` (None: it declares none)."""
        return config.models.section(cls.settings_key) if cls.settings_key is not None else None

    def __init__(self) -> None:
        self.fallbacks: dict[object, str] = {}

    @classmethod
    def from_config(cls, config: PipelineConfig, *, has_exog: bool) -> Self:
        """The model as the pipeline config sets it up."""
        return cls()

    @classmethod
    def min_points(cls, config: PipelineConfig, *, freq: str | None, lengths: pd.Series) -> int:
        """Points a series of a partition (at ``freq``, its series of these ``lengths``) needs for this model to
        fit it; a shorter one is left to the models that can."""
        return 1

    @abstractmethod
    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self: ...

    @abstractmethod
    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame: ...


def _recording(init):
    """``init`` that first keeps the arguments of the outermost constructor call in ``init_params_``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if "init_params_" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            received = {}
            for name, value in list(bound.arguments.items())[1:]:
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    received.update(value)
                else:
                    received[name] = value
            self.init_params_ = received
        init(self, *args, **kwargs)

    return wrapper


def model_params(model: Forecaster) -> dict:
    """What ``model``'s constructor received, JSON-safe (nested models, dataclasses and settings included),
    without its ``runtime_params``: recorded with every model version and part of its fingerprint."""
    received = getattr(model, "init_params_", {})
    return {"class": type(model).__name__,
            **{k: _plain(v) for k, v in received.items() if k not in type(model).runtime_params}}


def _plain(value: Any) -> Any:
    if isinstance(value, Forecaster):
        return model_params(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return repr(value)
