"""ARIMA / seasonal ARIMA per series (statsmodels state space), with an optional automatic order search.

The model is univariate: ``exog`` is accepted by ``fit`` and ``predict`` to honour the ``Forecaster`` interface
and then ignored.

Automatic order (``order="auto"``), per series, in the spirit of ``forecast::auto.arima``:

1. Seasonal part, only with ``seasonal_order="auto"`` (None means no seasonal part, a tuple is used as given),
   ``1 < m <= 12`` (``m = season_length(freq)``; longer seasons such as 52 for weekly data make each
   state-space fit take seconds) and at least ``3 * m`` points: if the seasonal strength of a classical additive
   decomposition is >= 0.64 the model gets a seasonal (0, 1, 1, m) part (D = 1), otherwise step 4 may add a
   (1, 0, 0, m) part. ``seasonal_order="auto"`` with a fixed ``order`` applies steps 1 and 4 only.
2. d: the KPSS level-stationarity test (``statsmodels.tsa.stattools.kpss``, regression "c") at the 5% level on
   the (seasonally differenced) series; difference and test again while it rejects, up to ``max_d``.
3. p, q: a stepwise AIC search over 0..max_p x 0..max_q. It fits (1, 1), (0, 0), (1, 0), (0, 1), then tries
   the neighbours (p +- 1, q +- 1 and both) of the best order, smaller models first, moves to the first one that
   lowers AIC and starts again from there, until no neighbour improves.
   Candidates that do not converge or fail are skipped; the series falls back only when every one fails.
4. If step 1 allowed a seasonal part with D = 0, (1, 0, 0, m) is added to the best order if that lowers AIC.

``trend=None`` means "c" (a mean) when d + D = 0 and none otherwise; an explicit trend is passed to statsmodels
as is (statsmodels rejects trends of lower order than d + D, which then becomes the series' fallback reason).

Each candidate is fitted to the standardized series (y - mean) / std (the mean only where the model has a
constant or differences; the fit is equivalent), because L-BFGS misbehaves on series of magnitude 1e12 or 1e-12;
forecasts, AIC, sigma2 and trend coefficients are reported on the scale of y.

A series falls back to the naive forecast (last value repeated), with its reason in ``fallbacks``, when it has
fewer than 10 points (or p + d + q + m(P + D + Q) + 2 for a fixed order), is constant, has infinite values,
does not converge (ConvergenceWarning), raises LinAlgError / ValueError / ArithmeticError, or its forecast is
not finite. Warnings raised while fitting never reach the console (``warnings.catch_warnings`` is
process-global, so do not fit from several threads).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field, StrictInt

from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y, future_timestamps, validate_panel
from forecasting.frequency import season_length
from forecasting.models.base import Forecaster, ModelSettings
from forecasting.models.local import fit_each_series, load_fit_libraries, one_blas_thread
from forecasting.models.parallel import map_chunks
from forecasting.models.seasonality import SeasonalAdjustment, adjust

if TYPE_CHECKING:  # statsmodels loads when a series is fitted: reading a config imports this module
    from statsmodels.tsa.arima.model import ARIMA

__all__ = ["ArimaForecaster", "ArimaSettings"]

_MIN_POINTS = 10
_KPSS_LEVEL = 0.05
_SEASONAL_STRENGTH = 0.64
_MAX_AUTO_SEASON = 12
_FIT_ERRORS = (np.linalg.LinAlgError, ValueError, ArithmeticError)
_TREND_POWERS = {"n": (), "c": (0,), "t": (1,), "ct": (0, 1)}  # statsmodels puts trend params first

Order = tuple[int, int, int]
SeasonalOrder = tuple[int, int, int, int]
_NO_SEASON: SeasonalOrder = (0, 0, 0, 0)


class _FitFailed(Exception):
    """One series (or one candidate order) could not be fitted; ``reason`` says why, for ``fallbacks``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Spec:
    order: Order
    seasonal_order: SeasonalOrder
    trend: str

    def model(self, y: np.ndarray) -> ARIMA:
        # Concentrating sigma2 out of the likelihood halves the fit time, but statsmodels (0.15) then fails on
        # models with no other parameter, e.g. (0,1,0) without trend.
        from statsmodels.tsa.arima.model import ARIMA

        p, _, q = self.order
        concentrate = p + q + self.seasonal_order[0] + self.seasonal_order[2] > 0 or self.trend != "n"
        return ARIMA(
            y, order=self.order, seasonal_order=self.seasonal_order, trend=self.trend, concentrate_scale=concentrate
        )

    def key(self) -> str:
        key = "({},{},{})".format(*self.order)
        return key if self.seasonal_order == _NO_SEASON else key + "({},{},{},{})".format(*self.seasonal_order)

    def standardization(self, y: np.ndarray) -> tuple[float, float]:
        """(center, scale) such that fitting (y - center) / scale is equivalent to fitting y.

        Centering is only equivalent when the model has a constant or differencing removes a level shift.
        """
        removes_level = "c" in self.trend or self.order[1] + self.seasonal_order[1] > 0
        return (float(y.mean()) if removes_level else 0.0), _spread(y)


@dataclass(frozen=True)
class _Fitted:
    """What ``predict`` needs for one series: the specification, the standardized values and their estimates.

    The model is fitted to ``z = (y - center) / scale`` (L-BFGS fails to converge or picks wrong orders on
    series of magnitude 1e12 or 1e-12); ``aic`` and ``sigma2`` are on the scale of y.
    """

    spec: _Spec
    param_names: tuple[str, ...]
    params: np.ndarray
    z: np.ndarray
    center: float
    scale: float
    aic: float
    sigma2: float

    def forecast(self, horizon: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = self.spec.model(self.z).filter(self.params)
            return self.center + self.scale * np.asarray(result.forecast(horizon), dtype="float64")

    def in_sample(self) -> np.ndarray:
        """One-step-ahead predictions of the training values, on the scale of y (for residual models)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = self.spec.model(self.z).filter(self.params)
            return self.center + self.scale * np.asarray(result.fittedvalues, dtype="float64")

    def coefficients(self) -> dict[str, float]:
        """Estimates on the scale of y: trend terms are scaled back (and the constant shifted), ARMA ones kept."""
        k_trend = len(_TREND_POWERS[self.spec.trend])
        out = {}
        for i, (name, value) in enumerate(zip(self.param_names, self.params, strict=True)):
            if i < k_trend:
                value = self.scale * value + (self.center if _TREND_POWERS[self.spec.trend][i] == 0 else 0.0)
            out[name] = float(value)
        return out | {"sigma2": self.sigma2}


def _min_points(order: Order, seasonal_order: SeasonalOrder) -> int:
    p, d, q = order
    big_p, big_d, big_q, m = seasonal_order
    return max(_MIN_POINTS, p + d + q + m * (big_p + big_d + big_q) + 2)


def _spread(y: np.ndarray) -> float:
    """Standard deviation that neither overflows (values near 1e200) nor underflows (near 1e-200)."""
    largest = float(np.abs(y).max())
    return largest * float(np.std(y / largest))


def _kpss_pvalue(z: np.ndarray) -> float:
    from statsmodels.tsa.stattools import kpss

    z = (z - z.mean()) / _spread(z)  # KPSS is scale-free; its automatic lag choice overflows on values like 1e200
    try:  # statsmodels >= 0.15 warns unless the result layout is chosen explicitly
        return float(kpss(z, regression="c", nlags="auto", result_object=True).pvalue)
    except TypeError:  # statsmodels 0.14: no result_object argument
        return float(kpss(z, regression="c", nlags="auto")[1])


def _choose_d(z: np.ndarray, max_d: int) -> int:
    """Number of differences after which KPSS no longer rejects level stationarity at 5% (at most max_d)."""
    d = 0
    while d < max_d and len(z) > _MIN_POINTS and np.ptp(z) > 0 and _kpss_pvalue(z) < _KPSS_LEVEL:
        z = np.diff(z)
        d += 1
    return d


def _seasonal_strength(y: np.ndarray, m: int) -> float:
    """Hyndman's F_s = max(0, 1 - var(remainder) / var(seasonal + remainder)), classical decomposition."""
    from statsmodels.tsa.seasonal import seasonal_decompose

    parts = seasonal_decompose(y, model="additive", period=m)
    resid = parts.resid[~np.isnan(parts.resid)]
    seasonal = parts.seasonal[~np.isnan(parts.resid)]
    total = np.var(seasonal + resid)
    return 0.0 if total == 0 else max(0.0, 1.0 - np.var(resid) / total)


def _neighbours(p: int, q: int) -> list[tuple[int, int]]:
    """The 8 neighbours of (p, q), smaller (faster to fit, more parsimonious) models first."""
    steps = [(dp, dq) for dp in (-1, 0, 1) for dq in (-1, 0, 1) if (dp, dq) != (0, 0)]
    steps.sort(key=lambda step: (step[0] + step[1], abs(step[0]) + abs(step[1])))
    return [(p + dp, q + dq) for dp, dq in steps]


_Count = Annotated[StrictInt, Field(ge=0)]


class ArimaSettings(ModelSettings):
    """``models.arima``: what the pipeline's ARIMA searches (the constructor's arguments, documented there)."""

    order: Literal["auto"] | tuple[_Count, _Count, _Count] = "auto"
    seasonal: bool = False
    max_points: Annotated[StrictInt, Field(ge=10)] | None = 500  # fit on the most recent points only
    # the stepwise search's bounds: 2 keeps auto-ARIMA near 150 ms per 300-point series (3: about 500 ms)
    max_p: _Count = 2
    # model M4-adjusted series (test, classical decomposition) when no seasonal ARIMA part is asked for
    deseasonalise: bool = True
    max_q: _Count = 2


class ArimaForecaster(Forecaster):
    """ARIMA(p, d, q)(P, D, Q, m) fitted separately on every series; see the module docstring for "auto".

    Args:
        order: (p, d, q), or "auto" for the search described in the module docstring. Defaults to "auto".
        seasonal_order: (P, D, Q, m) used as given; "auto" lets the model add a small seasonal part (module
            docstring); None means no seasonal part. Defaults to None.
        trend: statsmodels ``trend``: "n", "c", "t" or "ct"; None means "c" when d + D = 0, else "n".
        max_p: largest p the search tries. Defaults to 3.
        max_q: largest q the search tries. Defaults to 3.
        max_d: largest d the KPSS rule may choose. Defaults to 2.
        maxiter: iterations allowed to the L-BFGS likelihood optimiser. Defaults to 50 (statsmodels' default).
        max_points: fit on the last ``max_points`` values of each series only (None: all). Defaults to None.
        n_jobs: processes to fit series on (``forecasting.models.parallel``); None means this task's share of the cores
            (``resolve_n_jobs``). Defaults to 1.
        deseasonalise: model series that M4's test finds seasonal after M4's classical multiplicative adjustment
            (``forecasting.models.seasonality``) and re-seasonalise the forecasts, instead of a seasonal ARIMA
            part (much cheaper, and it works for periods above 12). Defaults to False.

    After ``fit``, ``params_`` maps every fitted series to a JSON-serializable dict (order, seasonal_order,
    trend, aic, nobs, coefficients incl. sigma2, candidates_aic, candidates_failed); series in ``fallbacks``
    are not in ``params_``.
    """

    name = "arima"
    settings_key = "arima"
    settings_model = ArimaSettings
    fit_errors: ClassVar[tuple[type[BaseException], ...]] = (_FitFailed,)

    @classmethod
    def from_config(cls, config, *, has_exog: bool) -> ArimaForecaster:
        settings = cls.settings(config)
        order = settings.order if settings.order == "auto" else tuple(settings.order)
        return cls(order=order, seasonal_order="auto" if settings.seasonal else None, max_points=settings.max_points,
                   max_p=settings.max_p, max_q=settings.max_q, n_jobs=config.modeling.n_jobs,
                   deseasonalise=settings.deseasonalise and not settings.seasonal)


    def __init__(
        self,
        order: Order | Literal["auto"] = "auto",
        seasonal_order: SeasonalOrder | Literal["auto"] | None = None,
        trend: str | None = None,
        *,
        max_p: int = 3,
        max_q: int = 3,
        max_d: int = 2,
        maxiter: int = 50,
        max_points: int | None = None,
        n_jobs: int | None = 1,
        deseasonalise: bool = False,
    ) -> None:
        super().__init__()
        self.n_jobs = n_jobs
        self.deseasonalise = deseasonalise
        self._seasons: dict[str, _Season] = {}
        if max_points is not None and (not isinstance(max_points, int) or max_points < 2):
            raise ValueError(f"max_points must be None or an integer >= 2, got {max_points!r}")
        self.max_points = max_points
        if not (order == "auto" if isinstance(order, str) else _is_int_tuple(order, 3)):
            raise ValueError(f'order must be "auto" or three non-negative integers (p, d, q), got {order!r}')
        if not (
            seasonal_order in (None, "auto")
            if seasonal_order is None or isinstance(seasonal_order, str)
            else _is_int_tuple(seasonal_order, 4) and seasonal_order[3] > 1
        ):
            raise ValueError(f'seasonal_order must be None, "auto" or (P, D, Q, m) with m > 1, got {seasonal_order!r}')
        if trend not in (None, *_TREND_POWERS):
            raise ValueError(f'trend must be None, "n", "c", "t" or "ct", got {trend!r}')
        for label, value in (("max_p", max_p), ("max_q", max_q), ("max_d", max_d)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{label} must be a non-negative integer, got {value!r}")
        if not isinstance(maxiter, int) or maxiter < 1:
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
        self.order = order if isinstance(order, str) else tuple(int(v) for v in order)
        self.seasonal_order = (
            seasonal_order
            if seasonal_order is None or isinstance(seasonal_order, str)
            else tuple(int(v) for v in seasonal_order)
        )
        self.trend = trend
        self.max_p, self.max_q, self.max_d = max_p, max_q, max_d
        self.maxiter = maxiter
        self.params_: dict[str, dict] = {}
        self._fits: dict[str, _Fitted] = {}
        self._last: dict[str, tuple[pd.Timestamp, float]] = {}
        self._freq: str | None = None
        self._ts_dtype = None

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        """Fit every series of ``panel``; ``exog`` is ignored (the model is univariate)."""
        validate_panel(panel)
        self.fallbacks, self.params_, self._fits, self._last = {}, {}, {}, {}
        self._freq, self._ts_dtype = freq, panel[TS].dtype
        m = season_length(freq)
        items = []
        for name, group in panel.groupby(SERIES, sort=False):
            y = group[Y].to_numpy(dtype="float64")
            if self.max_points is not None:
                y = y[-self.max_points:]  # old history adds little to an ARIMA fit and costs a lot
            self._last[name] = (group[TS].iloc[-1], float(y[-1]))
            items.append((name, y))
        self._seasons = {}
        for name, result, reason in map_chunks(fit_each_series, items, (self, m), n_jobs=self.n_jobs):
            if result is None:
                self.fallbacks[name] = reason
                continue
            fitted, detail, season = result
            self._fits[name] = fitted
            self.params_[name] = detail | {"seasonally_adjusted": season is not None}
            if season is not None:
                self._seasons[name] = season
        return self

    def fit_series(self, y: np.ndarray, m: int) -> tuple[_Fitted, dict, _Season | None]:
        """One series' fit, its description (``params_``) and its seasonal adjustment (None: not adjusted);
        raises ``_FitFailed`` when it falls back (``forecasting.models.local.fit_each_series`` runs it)."""
        season = None
        if self.deseasonalise and np.isfinite(y).all():
            adjustment = adjust(y, m)
            if adjustment.seasonal:
                season = _Season(adjustment, y / adjustment.adjusted)
                y = adjustment.adjusted
        fitted, search = self._fit_series(y, 1 if season is not None else m)
        return fitted, _describe(fitted, search), season

    def fitted_values(self, name: str) -> np.ndarray | None:
        """In-sample one-step predictions of series ``name`` (aligned with the last values it was fitted on),
        or None when it fell back to the naive forecast."""
        fitted = self._fits.get(name)
        if fitted is None:
            return None
        season = self._seasons.get(name)
        return fitted.in_sample() * (season.factors if season is not None else 1.0)

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        """``horizon`` steps after each series' last training timestamp; naive for series in ``fallbacks``.

        A series whose ARIMA forecast is not finite is added to ``fallbacks`` here and gets the naive forecast.
        ``exog`` is ignored (the model is univariate).
        """
        if self._freq is None:
            raise RuntimeError("ArimaForecaster.predict called before fit")
        if not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        load_fit_libraries()  # a model unpickled in a fresh process: before forecast() silences warnings
        with one_blas_thread():
            forecasts = {name: self._forecast_series(name, horizon, last_y) for name, (_, last_y) in self._last.items()}
        frames = [
            pd.DataFrame(
                {
                    SERIES: name,
                    TS: future_timestamps(last_ts, self._freq, horizon).astype(self._ts_dtype),
                    STEP: np.arange(1, horizon + 1, dtype="int64"),
                    YHAT: forecasts[name],
                }
            )
            for name, (last_ts, _) in self._last.items()
        ]
        out = pd.concat(frames, ignore_index=True) if frames else _empty_forecast(self._ts_dtype)
        return out.sort_values([SERIES, STEP], kind="stable", ignore_index=True)

    def _forecast_series(self, name: str, horizon: int, last_y: float) -> np.ndarray:
        naive = np.full(horizon, last_y, dtype="float64")
        fitted = self._fits.get(name)
        if fitted is None:
            return naive
        try:
            yhat = fitted.forecast(horizon)
            if name in self._seasons:
                yhat = self._seasons[name].adjustment.reseasonalise(yhat)
        except _FIT_ERRORS as exc:
            self.fallbacks[name] = f"forecast failed ({type(exc).__name__}: {exc})"
            return naive
        if not np.isfinite(yhat).all():
            self.fallbacks[name] = f"non-finite forecast from ARIMA{fitted.spec.key()}"
            return naive
        return yhat

    def _fit_series(self, y: np.ndarray, m: int) -> tuple[_Fitted, _Search]:
        if not np.isfinite(y).all():
            raise _FitFailed(f"series has {int((~np.isfinite(y)).sum())} infinite value(s)")
        if np.ptp(y) == 0:
            raise _FitFailed(f"constant series: all {len(y)} values equal {y[0]:g}")
        _require_length(y, _MIN_POINTS)
        try:
            seasonal, may_add_sar = self._seasonal_start(y, m)
            search = _Search(self, y)
            if self.order == "auto":
                self._search_pq(search, seasonal)
            else:
                _require_length(y, _min_points(self.order, seasonal))
                search.try_order(self.order, seasonal)
            if may_add_sar and search.best is not None:
                search.try_order(search.best.spec.order, (1, 0, 0, m))
            return search.result(), search
        except _FIT_ERRORS as exc:
            raise _FitFailed(f"fit failed ({type(exc).__name__}: {exc})") from exc

    def _seasonal_start(self, y: np.ndarray, m: int) -> tuple[SeasonalOrder, bool]:
        """The seasonal order to search with, and whether (1, 0, 0, m) may be tried on top of the best order."""
        if isinstance(self.seasonal_order, tuple):
            return self.seasonal_order, False
        if self.seasonal_order is None or not (1 < m <= _MAX_AUTO_SEASON and len(y) >= 3 * m):
            return _NO_SEASON, False
        if _seasonal_strength(y, m) >= _SEASONAL_STRENGTH:
            return (0, 1, 1, m), False
        return _NO_SEASON, True

    def _spec(self, order: Order, seasonal: SeasonalOrder) -> _Spec:
        trend = self.trend if self.trend is not None else ("c" if order[1] + seasonal[1] == 0 else "n")
        return _Spec(order=order, seasonal_order=seasonal, trend=trend)

    def _fit_candidate(self, y: np.ndarray, spec: _Spec) -> _Fitted:
        from statsmodels.tools.sm_exceptions import ConvergenceWarning

        center, scale = spec.standardization(y)
        z = (y - center) / scale
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = spec.model(z).fit(method_kwargs={"maxiter": self.maxiter}, cov_type="none")
            step_one = np.asarray(result.forecast(1))
        not_converged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        if not_converged or not result.mle_retvals.get("converged", True):
            detail = f"ConvergenceWarning: {not_converged[0].message}" if not_converged else "converged=False"
            iterations = result.mle_retvals.get("iterations", "?")
            raise _FitFailed(f"ARIMA{spec.key()} did not converge in {iterations} iterations ({detail})")
        params = np.asarray(result.params, dtype="float64")
        if not (np.isfinite(params).all() and np.isfinite(result.aic) and np.isfinite(step_one).all()):
            raise _FitFailed(f"ARIMA{spec.key()} gave non-finite estimates or forecasts")
        # the density of y = center + scale * z has the Jacobian 1 / scale per observation in the likelihood
        aic = float(result.aic + 2 * result.nobs_effective * np.log(scale))
        sigma2 = float(result.scale) * scale**2
        return _Fitted(spec, tuple(result.param_names), params.copy(), z, center, scale, aic, sigma2)

    def _search_pq(self, search: _Search, seasonal: SeasonalOrder) -> None:
        """Choose d by KPSS, then walk the (p, q) grid stepwise by AIC (module docstring, steps 2 and 3)."""
        y, m = search.y, seasonal[3]
        z = y[m:] - y[:-m] if seasonal[1] == 1 else y
        d = _choose_d(z, self.max_d)
        for p, q in ((1, 1), (0, 0), (1, 0), (0, 1)):
            search.try_order((p, d, q), seasonal)
        while search.best is not None:  # move to the first neighbour that lowers AIC, until none does
            p, _, q = search.best.spec.order
            if not any(search.try_order((p2, d, q2), seasonal) for p2, q2 in _neighbours(p, q)):
                break


@dataclass(frozen=True)
class _Season:
    """M4's seasonal adjustment of one series: ARIMA models the adjusted values (``deseasonalise=True``)."""

    adjustment: SeasonalAdjustment
    factors: np.ndarray  # in-sample, y / adjusted


class _Search:
    """Bookkeeping of one series' AIC search: candidates tried, the best so far, the failures."""

    def __init__(self, model: ArimaForecaster, y: np.ndarray) -> None:
        self.model, self.y = model, y
        self.best: _Fitted | None = None
        self.aics: dict[str, float] = {}
        self.tried: set[tuple[Order, SeasonalOrder]] = set()
        self.failures: dict[str, str] = {}

    def try_order(self, order: Order, seasonal: SeasonalOrder) -> bool:
        """Fit one candidate unless tried or out of bounds; True when it became the best."""
        p, _, q = order
        in_bounds = 0 <= p <= self.model.max_p and 0 <= q <= self.model.max_q
        if (order, seasonal) in self.tried or (self.model.order == "auto" and not in_bounds):
            return False
        self.tried.add((order, seasonal))
        if len(self.y) < _min_points(order, seasonal):
            return False
        spec = self.model._spec(order, seasonal)
        try:
            fitted = self.model._fit_candidate(self.y, spec)
        except _FitFailed as exc:
            self.failures[spec.key()] = exc.reason
            return False
        except _FIT_ERRORS as exc:
            self.failures[spec.key()] = f"ARIMA{spec.key()} failed ({type(exc).__name__}: {exc})"
            return False
        self.aics[fitted.spec.key()] = fitted.aic
        if self.best is None or fitted.aic < self.best.aic:
            self.best = fitted
            return True
        return False

    def result(self) -> _Fitted:
        if self.best is None:
            reasons = list(self.failures.values()) or ["no candidate order fits the series length"]
            suffix = f" [all {len(reasons)} candidate orders failed]" if len(reasons) > 1 else ""
            raise _FitFailed(reasons[0] + suffix)
        return self.best


def _require_length(y: np.ndarray, need: int) -> None:
    if len(y) < need:
        raise _FitFailed(f"series too short: {len(y)} points, need {need}")


def _is_int_tuple(value: object, size: int) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == size
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 0 for v in value)
    )


def _describe(fitted: _Fitted, search: _Search) -> dict:
    return {
        "order": list(fitted.spec.order),
        "seasonal_order": list(fitted.spec.seasonal_order),
        "trend": fitted.spec.trend,
        "aic": fitted.aic,
        "nobs": len(fitted.z),
        "coefficients": fitted.coefficients(),
        "candidates_aic": dict(search.aics),
        "candidates_failed": dict(search.failures),
    }


def _empty_forecast(ts_dtype) -> pd.DataFrame:
    return pd.DataFrame(
        {
            SERIES: pd.Series(dtype="str"),
            TS: pd.Series(dtype=ts_dtype),
            STEP: pd.Series(dtype="int64"),
            YHAT: pd.Series(dtype="float64"),
        }
    )
