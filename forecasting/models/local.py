"""Shared engine of the per-series models: fit each series on its own, in parallel processes, fall back to the
naive forecast for a series that cannot be fitted. ``fit_each_series`` is the one per-series loop, run by the
statistical models (Naive2, ETS; ``LocalForecaster``) and by ARIMA alike."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, ClassVar, Protocol, Self

import numpy as np
import pandas as pd

try:  # a dependency of scikit-learn, so normally present
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y, future_timestamps
from forecasting.frequency import season_length
from forecasting.models.base import Forecaster
from forecasting.models.parallel import map_chunks

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

__all__ = ["LocalForecaster", "SeriesFit", "SeriesFitError", "SeriesFitter", "fit_each_series", "load_fit_libraries",
           "one_blas_thread"]


class SeriesFitError(Exception):
    """One series cannot be fitted; the message becomes its ``fallbacks`` reason."""


class SeriesFit(Protocol):
    def forecast(self, horizon: int) -> np.ndarray: ...


class SeriesFitter(Protocol):
    """A model fitted series by series: ``fit_series`` raises one of ``fit_errors`` for a series it cannot fit."""

    fit_errors: tuple[type[BaseException], ...]

    def fit_series(self, y: np.ndarray, m: int) -> object: ...


def one_blas_thread():
    """The per-series matrices are tiny: BLAS threads only add contention (5x slower on a busy 2-CPU host)."""
    return threadpool_limits(limits=1, user_api="blas") if threadpool_limits is not None else nullcontext()


def load_fit_libraries() -> None:
    """Import the libraries the per-series fits use (statsmodels, and SciPy through it) before their warnings are
    silenced: they install warning filters of their own when first imported ("always" for statsmodels' model
    warnings), which would otherwise land in front of the silencing filter. The model modules import them lazily,
    so that reading a config (which imports the model classes) stays cheap."""
    import statsmodels.tsa.arima.model  # noqa: F401
    import statsmodels.tsa.seasonal  # noqa: F401
    import statsmodels.tsa.stattools  # noqa: F401


def fit_each_series(chunk: Sequence[tuple[str, np.ndarray]], context: tuple[SeriesFitter, int]) -> list:
    """(name, fit or None, reason or None) per (name, values) of ``chunk``: ``model.fit_series(y, m)`` for each,
    its warnings silenced (convergence and start values are per-series noise here) and its ``fit_errors`` turned
    into the series' reason. The one per-series loop of the local models, at module level so that worker
    processes (``forecasting.models.parallel.map_chunks``) can run it."""
    model, m = context
    load_fit_libraries()
    out = []
    with one_blas_thread():  # tiny matrices: BLAS threads only contend with the other processes
        for name, y in chunk:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out.append((name, model.fit_series(y, m), None))
            except model.fit_errors as exc:
                out.append((name, None, str(exc) or type(exc).__name__))
    return out


class LocalForecaster(Forecaster):
    """A model fitted separately on each series; subclasses implement ``fit_series``.

    Args:
        season: the seasonal period; None takes it from the frequency (``season_length``).
        n_jobs: processes to fit series on; None means this task's share of the cores (``resolve_n_jobs``).
        max_points: fit on the last ``max_points`` values of each series only (None: all).
    """

    kind = "local"
    fit_errors: ClassVar[tuple[type[BaseException], ...]] = (SeriesFitError, ValueError, ArithmeticError,
                                                             np.linalg.LinAlgError)

    def __init__(self, *, season: int | None = None, n_jobs: int | None = 1, max_points: int | None = None) -> None:
        super().__init__()
        self.season = season
        self.n_jobs = n_jobs
        self.max_points = max_points

    @classmethod
    def from_config(cls, config: PipelineConfig, *, has_exog: bool) -> Self:
        return cls(n_jobs=config.modeling.n_jobs, **cls._config_kwargs(config))

    @classmethod
    def _config_kwargs(cls, config: PipelineConfig) -> dict:
        """The constructor's arguments from the model's settings section: its fields, by name."""
        settings = cls.settings(config)
        return settings.model_dump() if settings is not None else {}

    def fit_series(self, y: np.ndarray, m: int) -> SeriesFit:
        raise NotImplementedError

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        self.fallbacks = {}
        self.freq_ = freq
        self.ts_dtype_ = panel[TS].dtype  # forecasts keep the panel's timestamp resolution
        m = self.season or season_length(freq)
        items, self.last_ = [], {}
        for name, group in panel.groupby(SERIES, sort=True):
            y = group[Y].to_numpy(dtype="float64")
            self.last_[name] = (group[TS].iloc[-1], float(y[-1]))
            items.append((name, y[-self.max_points:] if self.max_points else y))
        self.fits_: dict[str, SeriesFit] = {}
        for name, fitted, reason in self._fit_items(items, m):
            if fitted is None:
                self.fallbacks[name] = f"{reason}: naive"
            else:
                self.fits_[name] = fitted
        return self

    def _fit_items(self, items: list[tuple[str, np.ndarray]], m: int) -> list[tuple[str, SeriesFit | None, str | None]]:
        """(name, fit or None, reason) per (name, values); by default ``fit_series`` per series, in processes."""
        return map_chunks(fit_each_series, items, (self, m), n_jobs=self.n_jobs)

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        dtype = getattr(self, "ts_dtype_", "datetime64[ns]")
        if not self.last_:
            return pd.DataFrame({SERIES: [], TS: pd.Series(dtype=dtype), STEP: [], YHAT: []})
        grids: dict[pd.Timestamp, np.ndarray] = {}  # the series of a partition mostly end on the same timestamp
        stamps, forecasts = [], []
        for name, (last_ts, last_y) in self.last_.items():
            yhat = np.full(horizon, last_y)
            fitted = self.fits_.get(name)
            if fitted is not None:
                values = np.asarray(fitted.forecast(horizon), dtype="float64")
                if np.isfinite(values).all():
                    yhat = values
                else:
                    self.fallbacks[name] = "non-finite forecast: naive"
            if last_ts not in grids:
                grids[last_ts] = future_timestamps(last_ts, self.freq_, horizon).to_numpy()
            stamps.append(grids[last_ts])
            forecasts.append(yhat)
        names = pd.Series(list(self.last_)).repeat(horizon).reset_index(drop=True)
        out = pd.DataFrame({SERIES: names, TS: np.concatenate(stamps),
                            STEP: np.tile(np.arange(1, horizon + 1), len(self.last_)), YHAT: np.concatenate(forecasts)})
        out[TS] = out[TS].astype(dtype)
        return out
