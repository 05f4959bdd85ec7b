"""Step ``backtest``: every model on rolling origins over one partition, in each configured mode.

Writes the backtest forecasts next to their actuals and the per-series, per-step metrics. A model that
fails, or forecasts NaN/inf for a series, loses that series (recorded as a skip of that model) and costs
no other model or series anything.

The ensemble is not fitted: its backtest forecasts are combined from its members' (the same numbers), and when
``models.ensemble.members`` is empty its members and combination are chosen here, per partition, from the
backtest (``forecasting.backtesting.evaluation.choose_ensemble``); the step's summary records the choice for training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import psycopg

from forecasting.backtesting.backtest import BacktestResult, run_backtest
from forecasting.backtesting.evaluation import EnsembleChoice, backtest_metrics, choose_ensemble, ensemble_rows
from forecasting.backtesting.folds import series_cutoffs
from forecasting.features.panel import SERIES, STEP, YHAT
from forecasting.models.ensemble import EnsembleForecaster, combinations, combines_members, ensemble_members
from forecasting.models.registry import model_factories
from forecasting.steps.data import PartitionData, load_partition
from forecasting.steps.record import recorded
from forecasting.steps.screen import model_skips
from forecasting.store.results import backtest_forecasts_write, backtest_metrics_write
from forecasting.store.selectors import panel_first_known
from forecasting.store.steps import Skip, series_revised_any, skips_write

__all__ = ["backtest_partition"]

_log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def backtest_partition(conn: psycopg.Connection, *, run_id: int, key: str, progress: Progress | None = None) -> dict:
    return recorded(conn, run_id=run_id, step="backtest", key=key,
                    work=lambda: _backtest(conn, run_id, key, progress))


def _backtest(conn: psycopg.Connection, run_id: int, key: str, progress: Progress | None) -> dict:
    data = load_partition(conn, run_id=run_id, key=key, step="backtest")
    panel = data.panel
    skips: list[Skip] = list(data.skips)
    summary: dict = {"key": key, "n_series": int(panel[SERIES].nunique()), "n_windows": data.n_windows,
                     "modes": {}}
    if panel.empty:
        skips_write(conn, run_id=run_id, step="backtest", partition_key=key, skips=skips)
        return summary
    modes = sorted(data.config.backtest.modes, key=lambda m: m != "latest")  # latest first: as_known may reuse it
    latest: BacktestResult | None = None
    choice: EnsembleChoice | None = None
    for mode in modes:
        if mode == "as_known" and latest is not None and not _ever_revised(conn, data):
            _log.info("%s: no series was ever revised, so the as_known backtest equals the latest one", key)
            result = latest
        else:
            result, choice = _run_mode(conn, data, mode, progress, choice)
        if mode == "latest":
            latest = result
            skips += _model_skips(result, data)
        forecasts = _finite(result.forecasts)
        backtest_forecasts_write(conn, run_id=run_id, mode=mode, series_ids=data.series_ids,
                                 frame=forecasts.rename(columns={SERIES: "series_id"}))
        metrics = _per_series_metrics(forecasts, data)
        backtest_metrics_write(conn, run_id=run_id, mode=mode, series_ids=data.series_ids, frame=metrics)
        summary["modes"][mode] = {"forecasts": len(forecasts), "failures": result.failures,
                                  "fit_seconds": {m: round(s, 3) for m, s in result.fit_seconds.items()}}
    skips_write(conn, run_id=run_id, step="backtest", partition_key=key, skips=skips)
    summary["model_skips"] = len(skips)
    if choice is not None:
        summary["ensemble"] = choice.summary()
        _log.info("%s ensemble: %s of %s (pooled backtest MASE %.4g)", key, choice.how, ", ".join(choice.members),
                  choice.score)
    if latest is not None:
        _log.info("%s backtest per model (%d windows):\n%s", key, len(latest.folds), "\n".join(
            f"  {model:<18}{seconds:>8.2f} s  {n_failed} failed window(s)"
            for model, seconds, n_failed in _model_lines(latest)))
    return summary


def _model_lines(result: BacktestResult) -> list[tuple[str, float, int]]:
    failed: dict[str, int] = {}
    for failure in result.failures:
        failed[failure["model"]] = failed.get(failure["model"], 0) + 1
    return [(model, seconds, failed.get(model, 0)) for model, seconds in result.fit_seconds.items()]


def _ever_revised(conn: psycopg.Connection, data: PartitionData) -> bool:
    versions = [s.version_id for s in data.targets.values()] + [s.version_id for s in data.features.values()]
    return series_revised_any(conn, series_version_ids=versions)


def _run_mode(conn: psycopg.Connection, data: PartitionData, mode: str, progress: Progress | None,
              choice: EnsembleChoice | None) -> tuple[BacktestResult, EnsembleChoice | None]:
    supplier = exog_supplier = None
    if mode == "as_known":
        def supplier(fold):
            # each series' own cut-off: a series that ends early is cut before the partition's cut-off
            own = series_cutoffs(data.panel, fold)
            return panel_first_known(conn, cutoffs={int(k): ts.to_pydatetime() for k, ts in own.items()})

        def exog_supplier(fold):
            # feature series as first known at the window's cut-off, like the targets
            cutoff = fold.cutoff.to_pydatetime()
            return panel_first_known(conn, cutoffs={s.series_id: cutoff for s in data.features.values()},
                                     keys={s.series_id: s.name for s in data.features.values()})
    factories = model_factories(data.config, has_exog=data.has_exog)
    combined = combines_members(data.config)
    if combined:
        del factories["ensemble"]
    if progress is not None:
        factories = {name: _reporting(name, factory, progress) for name, factory in factories.items()}
    result = run_backtest(data.panel, factories, data.spec, freq=data.freq, exog=data.exog, panel_for_fold=supplier,
                          exog_for_fold=exog_supplier if data.has_exog else None)
    if not combined or result.forecasts.empty:
        return result, choice
    if progress is not None:
        progress("ensemble")
    started = time.perf_counter()
    choice = choice or _choose_ensemble(result.forecasts, data)
    if choice is not None:
        rows = ensemble_rows(result.forecasts, choice.members, choice.how)
        result.forecasts = pd.concat([result.forecasts, rows], ignore_index=True)
    result.fit_seconds["ensemble"] = time.perf_counter() - started
    return result, choice


def _choose_ensemble(forecasts: pd.DataFrame, data: PartitionData) -> EnsembleChoice | None:
    """The configured members and combination, or (no members configured) the best by backtest among the
    enabled models outside the baselines; the combination too unless ``models.ensemble.how`` fixes one."""
    settings = EnsembleForecaster.settings(data.config)
    if settings.members:
        return EnsembleChoice(tuple(settings.members), settings.fixed_how())
    return choose_ensemble(forecasts, data.panel, freq=data.freq, candidates=ensemble_members(data.config),
                           hows=combinations(data.config))


def _reporting(name: str, factory, progress: Progress):
    def build():
        progress(name)
        return factory()
    return build


def _finite(forecasts: pd.DataFrame) -> pd.DataFrame:
    if forecasts.empty:
        return forecasts
    return forecasts[np.isfinite(forecasts[YHAT].to_numpy(dtype="float64"))].reset_index(drop=True)


def _model_skips(result: BacktestResult, data: PartitionData) -> list[Skip]:
    """A skip for every (series, model) with no finite backtest forecast: too short for the model or for one of
    its backtest windows (the series is then forecast without a score), excluded by an earlier step, NaN/inf,
    or the model's error if it failed."""
    errors = {}
    for failure in result.failures:
        errors.setdefault(failure["model"], failure["error"])
    produced, nonfinite = set(), set()
    if not result.forecasts.empty:
        finite = _finite(result.forecasts)
        produced = set(zip(finite["model"], finite[SERIES], strict=True))
        nonfinite = set(zip(result.forecasts["model"], result.forecasts[SERIES], strict=True)) - produced
    short = {(s.model, s.series_id): s for s in model_skips(data.lengths(), data.spec)}
    skips = []
    for model in data.config.models.enabled:
        for series_id in data.series_ids:
            if (model, series_id) in produced or series_id in data.spec.excluded.get(model, ()):
                continue
            if (model, series_id) in short:
                skips.append(short[model, series_id])
                continue
            if (model, series_id) in nonfinite:
                reason = "backtest forecasts were NaN or infinite"
            else:
                reason = f"model failed in the backtest: {errors.get(model, 'no forecast for this series')}"
            skips.append(Skip(int(series_id), reason, model=model))
    return skips


def _per_series_metrics(forecasts: pd.DataFrame, data: PartitionData) -> pd.DataFrame:
    columns = ["model", "series_id", STEP, "metric", "value"]
    if forecasts.empty:
        return pd.DataFrame(columns=columns)
    long = backtest_metrics(forecasts, data.panel, freq=data.freq, levels=tuple(data.config.prediction.levels))
    long = long[long[SERIES].notna() & long[STEP].notna()]
    return long.rename(columns={SERIES: "series_id"}).astype({"series_id": "int64", STEP: "int64"})[columns]
