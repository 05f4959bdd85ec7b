"""Rolling-origin backtests: every model is evaluated on the same windows, a failing model never stops the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.backtesting.folds import Fold, make_folds, series_cutoffs, split_fold
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.models.base import Forecaster

__all__ = ["BacktestResult", "BacktestSpec", "run_backtest"]

_log = logging.getLogger(__name__)

ModelFactory = Callable[[], Forecaster]


@dataclass(frozen=True)
class BacktestSpec:
    """How a partition is backtested, resolved once from the config and the partition's data
    (``forecasting.steps.screen.backtest_spec``) and used by every step, the tuner and the benchmark.

    Attributes:
        horizon: steps forecast past each cutoff.
        n_windows: rolling origins (window 0 the latest).
        step: grid steps between two origins.
        refit: refit every model at every origin (False: fit on the oldest, then ``update``).
        min_train: per model, the training points a series needs at a cutoff to be scored there.
        excluded: per model, series an earlier step of the run left out for that model only.
    """

    horizon: int
    n_windows: int
    step: int
    refit: bool = True
    min_train: Mapping[str, int] = field(default_factory=dict)
    excluded: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def need(self, model: str) -> int:
        return self.min_train.get(model, 1)

    def one_window(self, model: str) -> int:
        """Points a series needs to be scored by ``model`` in at least the latest window."""
        return self.need(model) + self.horizon

    def series_models(self, lengths: pd.Series, models: Iterable[str]) -> dict[str, pd.Index]:
        """Per model, the series (of these lengths) it fits, forecasts and is scored on.

        A series goes to every model that can be scored on it in at least one window. One that no model can be
        scored on goes to every model that can fit it at all: it is forecast without a backtest score."""
        models = list(models)
        scored = {m: lengths.index[lengths >= self.one_window(m)] for m in models}
        somewhere = lengths.index[np.logical_or.reduce([lengths.index.isin(i) for i in scored.values()])] \
            if scored else lengths.index[:0]
        out = {}
        for m in models:
            unscored = lengths.index[(lengths >= self.need(m)) & ~lengths.index.isin(somewhere)]
            out[m] = scored[m].union(unscored).difference(pd.Index(list(self.excluded.get(m, ()))))
        return out

    def thresholds(self, takes: Mapping[str, pd.Index]) -> pd.Series:
        """Per series, the training points it needs at a cutoff to be scored there: the largest need among the
        models that take it, so every model of a series is scored on the same windows."""
        pieces = [pd.Series(self.need(m), index=index) for m, index in takes.items() if len(index)]
        if not pieces:
            return pd.Series(dtype="int64")
        return pd.concat(pieces).groupby(level=0).max()


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
    joined = test[[SERIES, TS, STEP, Y, "cutoff"]].merge(predicted[[SERIES, TS, YHAT]], on=[SERIES, TS], how="inner")
    return joined.assign(window=fold.window, model=name)


def _with_history(frame: pd.DataFrame, trained: pd.Index) -> pd.DataFrame:
    return frame[frame[SERIES].isin(trained)].reset_index(drop=True)


def _cut_at(supplied: pd.DataFrame, cutoffs: pd.Series) -> pd.DataFrame:
    """The supplied training panel cut at each series' own cutoff."""
    return supplied[supplied[TS] <= supplied[SERIES].map(cutoffs)].reset_index(drop=True)


def run_backtest(
    panel: pd.DataFrame, factories: Mapping[str, ModelFactory], spec: BacktestSpec, *, freq: str,
    exog: pd.DataFrame | None = None, panel_for_fold: Callable[[Fold], pd.DataFrame] | None = None,
    exog_for_fold: Callable[[Fold], pd.DataFrame] | None = None,
) -> BacktestResult:
    """Fit each model on the data up to every cutoff and forecast ``spec.horizon`` steps past it.

    ``spec.refit=False`` fits each model on the oldest window only and reuses it, updated with each later
    window's history (models without ``update`` are refitted). ``panel_for_fold`` supplies the training
    data of a window (the vintage-correct backtest passes the data as it was known at the cutoff);
    actuals always come from ``panel``. ``exog_for_fold`` likewise supplies a window's feature series (up to
    its cutoff) instead of ``exog`` cut at the cutoff. Each model takes the series ``spec.series_models`` gives
    it; a series with fewer training points at a window's cutoff than the most demanding of its models needs is
    left out of that window for all of them, so it is scored only where it had the history, and its models on
    the same windows.
    """
    horizon = spec.horizon
    # a partition of short series still gets the windows its series can be scored on
    folds = make_folds(panel, freq=freq, horizon=horizon, n_windows=spec.n_windows, step=spec.step,
                       require_history=False)
    result = BacktestResult(forecasts=pd.DataFrame(), folds=folds)
    takes = spec.series_models(panel.groupby(SERIES).size(), factories)
    thresholds = spec.thresholds(takes)
    fitted: dict[str, Forecaster] = {}
    pieces = []
    for fold in folds:
        train, test = split_fold(panel, fold)
        if panel_for_fold is not None:
            train = _cut_at(panel_for_fold(fold), series_cutoffs(panel, fold))
        counts = train[SERIES].value_counts()
        scored = counts.index[counts >= counts.index.map(thresholds).to_numpy()]
        if exog_for_fold is not None and exog is not None:
            fold_exog = exog_for_fold(fold)
        else:
            fold_exog = exog[exog[TS] <= fold.cutoff] if exog is not None else None
        for name, factory in factories.items():
            started = time.perf_counter()
            trained = scored.intersection(takes[name])
            model_train, model_test = _with_history(train, trained), _with_history(test, trained)
            if model_train.empty:
                continue
            try:
                model = fitted.get(name) if not spec.refit else None
                if model is not None and hasattr(model, "update"):
                    model.update(model_train, exog=fold_exog)
                else:
                    model = factory().fit(model_train, freq=freq, exog=fold_exog)
                    fitted[name] = model
                pieces.append(_window_forecasts(model, model_test, fold, horizon, name))
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
