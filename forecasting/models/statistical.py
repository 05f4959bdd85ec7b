"""Fast per-series statistical models: M4's Naive2, exponential smoothing (ETS) and Theta.

All three handle seasonality the way the M4 benchmarks do (``forecasting.models.seasonality``): when M4's
autocorrelation test finds a series seasonal, it is adjusted by a classical multiplicative decomposition, the
non-seasonal model forecasts the adjusted series and the forecast is multiplied back by the seasonal indices.
For ETS this replaces a seasonal state: statsmodels' seasonal ``ETSModel`` takes about 180 ms per 300-point
monthly series against about 10 ms for a non-seasonal form, and the M4 "Comb" benchmark used the same route.

Each keeps only a few numbers per series after ``fit`` (final level and slope, damping, indices), so models are
small to pickle and ``predict`` is a closed-form expression.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, StrictInt

from forecasting.models.base import ModelSettings
from forecasting.models.local import LocalForecaster, SeriesFitError, load_fit_libraries
from forecasting.models.seasonality import SeasonalAdjustment, adjust

__all__ = ["ETS_FORMS", "EtsForecaster", "EtsSettings", "Naive2Forecaster", "ThetaForecaster", "ThetaSettings"]

_MIN_POINTS = 3


def _check(y: np.ndarray, need: int = _MIN_POINTS) -> None:
    if not np.isfinite(y).all():
        raise SeriesFitError("series has non-finite values")
    if len(y) < need:
        raise SeriesFitError(f"series too short: {len(y)} points, need {need}")


def _adjusted_input(y: np.ndarray, m: int, *, seasonal: bool):
    """The series as ETS and Theta fit it: long enough, not constant, and seasonally adjusted by M4's test
    when ``seasonal`` (the adjustment is undone on the forecasts)."""
    _check(y, 4)
    if np.ptp(y) == 0:
        raise SeriesFitError(f"constant series ({y[0]:g})")
    return adjust(y, m) if seasonal else adjust(y, 1)


@dataclass(frozen=True)
class _Naive2Fit:
    last: float
    season: SeasonalAdjustment

    def forecast(self, horizon: int) -> np.ndarray:
        return self.season.reseasonalise(np.full(horizon, self.last))


class Naive2Forecaster(LocalForecaster):
    """M4's Naive2: the last value of the seasonally adjusted series, re-seasonalised (naive when not seasonal)."""

    name = "naive2"

    def fit_series(self, y: np.ndarray, m: int) -> _Naive2Fit:
        _check(y, 1)
        season = adjust(y, m)
        return _Naive2Fit(last=float(season.adjusted[-1]), season=season)


@dataclass(frozen=True)
class _EtsForm:
    form: str
    level: float
    slope: float
    phi: float
    aicc: float

    def path(self, horizon: int) -> np.ndarray:
        h = np.arange(1, horizon + 1)
        damping = np.cumsum(self.phi ** h) if self.phi != 1.0 else h.astype("float64")
        return self.level + self.slope * damping


@dataclass(frozen=True)
class _EtsFit:
    forms: tuple[_EtsForm, ...]   # the best by AICc first
    weights: tuple[float, ...]    # of each form in the forecast
    season: SeasonalAdjustment

    @property
    def form(self) -> str:
        return self.forms[0].form

    @property
    def aicc(self) -> float:
        return self.forms[0].aicc

    def forecast(self, horizon: int) -> np.ndarray:
        path = sum(w * f.path(horizon) for w, f in zip(self.weights, self.forms, strict=True))
        return self.season.reseasonalise(path)


# (error, trend, damped) of the non-seasonal forms searched; multiplicative error only for positive data
ETS_FORMS: dict[str, tuple[str, str | None, bool]] = {
    "ANN": ("add", None, False),
    "AAN": ("add", "add", False),
    "AAdN": ("add", "add", True),
    "MNN": ("mul", None, False),
    "MAdN": ("mul", "add", True),
}


class EtsSettings(ModelSettings):
    """``models.ets``: the constructor's arguments (documented there) and ``max_points``."""

    # non-seasonal forms chosen among by AICc; seasonality is removed first by M4's test and decomposition
    forms: list[Literal["ANN", "AAN", "AAdN", "MNN", "MAdN"]] = Field(
        default_factory=lambda: ["ANN", "AAN", "AAdN", "MNN", "MAdN"], min_length=1)
    seasonal: bool = True
    max_points: Annotated[StrictInt, Field(ge=10)] | None = None
    # aicc_weights: the forms' forecasts weighted by their Akaike weights; best: the lowest AICc form alone
    combine: Literal["best", "aicc_weights"] = "aicc_weights"


class EtsForecaster(LocalForecaster):
    """Exponential smoothing: every form fitted per series (statsmodels ``ETSModel``'s likelihood, maximised by a
    compiled search, ``forecasting.models.ets_kernel``, about 100 times faster than statsmodels' fit), their
    forecasts combined by Akaike weights, or (``combine="best"``) the lowest-AICc form alone.

    Args:
        forms: names from ``ETS_FORMS`` to choose among. Defaults to all of them.
        seasonal: adjust series that M4's test finds seasonal (module docstring). Defaults to True.
        combine: "aicc_weights" (default) or "best".
    """

    name = "ets"
    settings_key = "ets"
    settings_model = EtsSettings

    def __init__(self, *, forms: tuple[str, ...] | list[str] = tuple(ETS_FORMS), seasonal: bool = True,
                 combine: str = "aicc_weights", **kwargs) -> None:
        super().__init__(**kwargs)
        if combine not in ("best", "aicc_weights"):
            raise ValueError(f"combine must be 'best' or 'aicc_weights', got {combine!r}")
        self.combine = combine
        unknown = [f for f in forms if f not in ETS_FORMS]
        if unknown or not forms:
            raise ValueError(f"unknown or no ETS forms {unknown}; known: {list(ETS_FORMS)}")
        self.forms = tuple(forms)
        self.seasonal = seasonal

    def fit_series(self, y: np.ndarray, m: int) -> _EtsFit:
        from forecasting.models.ets_kernel import ets_fit

        season = _adjusted_input(y, m, seasonal=self.seasonal)
        z = season.adjusted
        # ETS likelihoods are not scale-free in the optimiser's eyes: fit on a unit scale, report on y's
        scale = float(np.mean(np.abs(z))) or 1.0
        fitted: list[_EtsForm] = []
        for form in self.forms:
            error, trend, damped = ETS_FORMS[form]
            if error == "mul" and not np.all(z > 0):
                continue
            n_params = 2 + (2 if trend else 0) + (1 if damped else 0) + 1
            if len(z) <= n_params + 1:  # AICc is undefined without more points than parameters
                continue
            result = ets_fit(z / scale, mul=error == "mul", trend=trend is not None, damped=damped)
            if result is None or not math.isfinite(float(result["aicc"])):
                continue
            level = float(result["level"]) * scale
            slope = float(result["slope"]) * scale
            if math.isfinite(level) and math.isfinite(slope):
                fitted.append(_EtsForm(form, level, slope, float(result["phi"]) if damped else 1.0,
                                       float(result["aicc"])))
        if not fitted:
            raise SeriesFitError("no ETS form could be fitted")
        fitted.sort(key=lambda f: f.aicc)
        if self.combine == "best":
            return _EtsFit((fitted[0],), (1.0,), season)
        # Akaike weights: each form in proportion to its likelihood corrected for its parameters (Burnham and
        # Anderson); combining the forms this way forecasts better than choosing one (Kolassa 2011, on M3)
        delta = np.array([f.aicc - fitted[0].aicc for f in fitted])
        weights = np.exp(-0.5 * delta)
        return _EtsFit(tuple(fitted), tuple(float(w) for w in weights / weights.sum()), season)


@dataclass(frozen=True)
class _ThetaFit:
    ses: float
    b0: float
    alpha: float
    n: int
    season: SeasonalAdjustment

    def forecast(self, horizon: int) -> np.ndarray:
        # Hyndman & Billah (2003): SES plus half the linear-trend slope, with the SES start-up correction
        h = np.arange(1, horizon + 1)
        alpha = max(self.alpha, 1e-8)
        drift = 0.5 * self.b0 * (h - 1 + 1 / alpha - (1 - alpha) ** self.n / alpha)
        return self.season.reseasonalise(self.ses + drift)


def _trend_slope(z: np.ndarray) -> float:
    """b0 of the least-squares line a0 + b0 * t through z (t = 0, 1, ...), as statsmodels' ThetaModel fits it."""
    t = np.arange(len(z), dtype="float64")
    t -= t.mean()
    return float(np.dot(t, z - z.mean()) / np.dot(t, t))


class ThetaSettings(ModelSettings):
    """``models.theta``: whether to adjust seasonal series first, and ``max_points``."""

    seasonal: bool = True
    max_points: Annotated[StrictInt, Field(ge=10)] | None = None


class ThetaForecaster(LocalForecaster):
    """The standard Theta method (theta = 2, as statsmodels' ``ThetaModel``) on the M4-adjusted series.

    The estimates are statsmodels' (the least-squares trend slope b0, the SES parameter that minimises the sum of
    squared one-step errors from the first value), but every series of a panel is fitted at once
    (``forecasting.models.smoothing``): a few milliseconds per hundred series, in this process.
    """

    name = "theta"
    settings_key = "theta"
    settings_model = ThetaSettings

    def __init__(self, *, seasonal: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seasonal = seasonal

    def fit_series(self, y: np.ndarray, m: int) -> _ThetaFit:
        ((_, fitted, reason),) = self._fit_items([("", y)], m)
        if fitted is None:
            raise SeriesFitError(reason)
        return fitted

    def _fit_items(self, items: list[tuple[str, np.ndarray]], m: int) -> list[tuple[str, _ThetaFit | None, str | None]]:
        from forecasting.models.smoothing import ses_fit

        load_fit_libraries()
        out, ready = [], []
        for name, y in items:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ready.append((name, y, _adjusted_input(y, m, seasonal=self.seasonal)))
            except (SeriesFitError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                out.append((name, None, str(exc) or type(exc).__name__))
        if ready:
            alphas, levels = ses_fit([season.adjusted for _, _, season in ready])
            for (name, y, season), alpha, level in zip(ready, alphas, levels, strict=True):
                out.append((name, _ThetaFit(ses=float(level), b0=_trend_slope(season.adjusted), alpha=float(alpha),
                                            n=len(y), season=season), None))
        return out
