"""A combination of other models' forecasts: the median (or mean) per (series, timestamp).

The median of a few good, different models (smoothing, Theta, ARIMA, a global tree model) is the robust
choice of the M4 results: it needs no weights estimated from a handful of backtest windows, and one model
going astray on a series moves it little. ``combine`` is the rule; ``EnsembleForecaster`` fits its members and
applies it, so the ensemble is backtested like any other model. Code that already has the members' forecasts
(the accuracy benchmark) calls ``combine`` on them and gets the same numbers without fitting twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Self

import pandas as pd
from pydantic import Field, field_validator

from forecasting.features.panel import SERIES, STEP, TS, YHAT
from forecasting.models.base import Forecaster, ModelName, ModelSettings

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

__all__ = ["EnsembleForecaster", "EnsembleSettings", "combinations", "combine", "combines_members",
           "ensemble_members"]

# candidates when the config names no members: every enabled model that learns something (the baselines are
# there to be beaten, and hybrid repeats arima + lightgbm); the pipeline's backtest picks the members among them
_NOT_MEMBERS = {"naive", "seasonal_naive", "naive2", "hybrid", "ensemble"}


class EnsembleSettings(ModelSettings):
    """``models.ensemble``: its members and how their forecasts are combined."""

    # models whose median forecast the ensemble is; empty: every enabled model except the baselines
    members: list[ModelName] = Field(default_factory=list)
    # auto: the backtest chooses median or mean with the members (``combinations``); with members configured, or
    # where no backtest chooses, the median. A value, not "unset": a run's steps read its config back from JSON
    how: Literal["auto", "median", "mean"] = "auto"

    def fixed_how(self) -> str:
        """The combination where no backtest chooses one (members configured, or the ensemble fitted on its own):
        ``how``, the median when it is auto."""
        return "median" if self.how == "auto" else self.how

    @field_validator("members")
    @classmethod
    def _not_itself(cls, value: list[str]) -> list[str]:
        if "ensemble" in value:
            raise ValueError("the ensemble cannot be its own member")
        return value


def combine(forecasts: pd.DataFrame, members: Sequence[str], *, keys: Sequence[str] = (SERIES, TS, STEP),
            how: str = "median") -> pd.DataFrame:
    """Median (or mean, ``how="mean"``) ``yhat`` over the ``members`` rows of ``forecasts`` (column model) per
    ``keys``. A key that some member lacks (that model failed in a window) gets the value of the members present.
    """
    if how not in ("median", "mean"):
        raise ValueError(f"how must be 'median' or 'mean', got {how!r}")
    part = forecasts[forecasts["model"].isin(members)]
    return part.groupby(list(keys), as_index=False, sort=True)[YHAT].agg(how)


def ensemble_members(config: PipelineConfig) -> list[str]:
    """The configured members, or (none configured) the candidates: every enabled model outside the baselines."""
    chosen = EnsembleForecaster.settings(config).members
    if chosen:
        return list(chosen)
    return [name for name in config.models.enabled if name not in _NOT_MEMBERS]


def combinations(config: PipelineConfig) -> tuple[str, ...]:
    """The combinations the backtest chooses the ensemble's among: median and mean, unless ``how`` fixes one."""
    how = EnsembleForecaster.settings(config).how
    return ("median", "mean") if how == "auto" else (how,)


def combines_members(config: PipelineConfig) -> bool:
    """Whether the ensemble is enabled and made of other enabled models: the pipeline then combines their
    forecasts and fits instead of fitting them a second time (members outside ``models.enabled`` are fitted
    inside the ensemble, as any model)."""
    enabled = config.models.enabled
    return "ensemble" in enabled and all(name in enabled for name in ensemble_members(config))


class EnsembleForecaster(Forecaster):
    """The median of its member models' forecasts (module docstring)."""

    name = "ensemble"
    kind = "global"
    settings_key = "ensemble"
    settings_model = EnsembleSettings

    def __init__(self, members: dict[str, Forecaster], *, how: str = "median") -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member model")
        self.members = members
        self.how = how

    @classmethod
    def of_fitted(cls, members: dict[str, Forecaster], *, how: str = "median") -> Self:
        """The ensemble of members that are already fitted (the pipeline's training reuses its own fits)."""
        model = cls(members, how=how)
        for name, member in members.items():
            model.fallbacks.update({s: f"{name}: {r}" for s, r in member.fallbacks.items()})
        return model

    @classmethod
    def from_config(cls, config: PipelineConfig, *, has_exog: bool) -> Self:
        from forecasting.models.registry import build_model

        return cls({name: build_model(name, config, has_exog=has_exog) for name in ensemble_members(config)},
                   how=cls.settings(config).fixed_how())


    @classmethod
    def min_points(cls, config: PipelineConfig, *, freq: str | None, lengths: pd.Series) -> int:
        from forecasting.models.registry import model_class

        return max((model_class(name).min_points(config, freq=freq, lengths=lengths)
                    for name in ensemble_members(config)), default=1)

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        for name, model in self.members.items():
            model.fit(panel, freq=freq, exog=exog)
            self.fallbacks.update({s: f"{name}: {r}" for s, r in model.fallbacks.items()})
        return self

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        pieces = [model.predict(horizon, exog=exog)[[SERIES, TS, STEP, YHAT]].assign(model=name)
                  for name, model in self.members.items()]
        combined = combine(pd.concat(pieces, ignore_index=True), list(self.members), how=self.how)
        return combined[[SERIES, TS, STEP, YHAT]]
