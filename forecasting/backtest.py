"""Rolling-origin backtests: every model is evaluated on the same windows, a failing model never stops the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from forecasting.folds import Fold, make_folds, split_fold
from forecasting.models.base import Forecaster
from forecasting.panel import SERIES, STEP, TS, YHAT, Y

__all__ = ["BacktestResult", "run_backtest"]

_log = logging.getLogger(__name__)

ModelFactory = Callable[[], Forecaster]


@dataclass
class BacktestResult:
    """Point forecasts of every window next to the actuals, plus what went wrong where."""

    forecasts: pd.DataFrame  # window, cutoff, model, series, ts, step, y, yhat
    folds: list[Fold]
    failures: list[dict] = field(default_factory=list)   # whole-model failures per window
    fallbacks: list[dict] = field(default_factory=list)  # per-series fallbacks reported by models
    fit_seconds: dict[str, float] = field(default_factory=dict)


def _window_forecasts(model: Forecaster, test: pd.DataFrame, fold: Fold, horizon: int, name: str) -> pd.DataFrame:
    predicted = model.predict(horizon)
    joined = test[[SERIES, TS, STEP, Y]].merge(predicted[[SERIES, TS, YHAT]], on=[SERIES, TS], how="inner")
    return joined.assign(window=fold.window, cutoff=fold.cutoff, model=name)


def _with_history(train: pd.DataFrame, min_train: int) -> pd.DataFrame:
    counts = train[SERIES].value_counts()
    return train[train[SERIES].isin(counts.index[counts >= min_train])].reset_index(drop=True)


def run_backtest(
    panel: pd.DataFrame, factories: Mapping[str, ModelFactory], *, freq: str, horizon: int, n_windows: int,
    step: int | None = None, refit: bool = True, exog: pd.DataFrame | None = None,
    panel_for_fold: Callable[[Fold], pd.DataFrame] | None = None, min_train: int = 1,
) -> BacktestResult:
    """Fit each model on the data up to every cutoff and forecast ``horizon`` steps past it.

    ``refit=False`` fits each model on the oldest window only and reuses it, updated with each later
    window's history (models without ``update`` are refitted). ``panel_for_fold`` supplies the training
    data of a window (the vintage-correct backtest passes the data as it was known at the cutoff);
    actuals always come from ``panel``. A series with fewer than ``min_train`` points at a window's cutoff
    is left out of that window (every model alike), so it is scored only where it had the history.
    """
    folds = make_folds(panel, freq=freq, horizon=horizon, n_windows=n_windows, step=step)
    result = BacktestResult(forecasts=pd.DataFrame(), folds=folds)
    fitted: dict[str, Forecaster] = {}
    pieces = []
    for fold in folds:
        train, test = split_fold(panel, fold, min_train=min_train)
        if panel_for_fold is not None:
            train = _with_history(panel_for_fold(fold), min_train)
        fold_exog = exog[exog[TS] <= fold.cutoff] if exog is not None else None
        for name, factory in factories.items():
            started = time.perf_counter()
            try:
                model = fitted.get(name) if not refit else None
                if model is not None and hasattr(model, "update"):
                    model.update(train, exog=fold_exog)
                else:
                    model = factory().fit(train, freq=freq, exog=fold_exog)
                    fitted[name] = model
                pieces.append(_window_forecasts(model, test, fold, horizon, name))
                result.fallbacks += [{"model": name, "window": fold.window, SERIES: s, "reason": r}
                                     for s, r in model.fallbacks.items()]
            except Exception as exc:  # one model failing must not cost the others their evaluation
                _log.exception("backtest: model %r failed on window %d", name, fold.window)
                result.failures.append({"model": name, "window": fold.window, "error": f"{type(exc).__name__}: {exc}"})
            result.fit_seconds[name] = result.fit_seconds.get(name, 0.0) + time.perf_counter() - started
    if pieces:
        result.forecasts = pd.concat(pieces, ignore_index=True)[
            ["window", "cutoff", "model", SERIES, TS, STEP, Y, YHAT]]
    return result
