"""``forecasting tune``: hyperparameter search by backtest.

Each trial (estimator parameters and a lag set from the model's ``search``) is a rolling-origin backtest on
the configured windows of the stored series, as the 'latest' data: the same windows the champions are chosen
on, and never anything after the last stored point. Trials are scored by one metric pooled over series and
steps, every trial is stored in ``tuning_trials`` under a pipeline run of command 'tune', and the best trial
of each model becomes its ``tuned_parameters``, which later runs of the config train with.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from forecasting.backtesting.backtest import run_backtest
from forecasting.backtesting.evaluation import backtest_metrics
from forecasting.config import PipelineConfig
from forecasting.db import Database, apply_migrations
from forecasting.errors import ConfigError
from forecasting.features.panel import SERIES, STEP
from forecasting.models.registry import build_model
from forecasting.steps.data import PartitionData, load_partition
from forecasting.steps.plan import plan_run
from forecasting.steps.screen import model_needs
from forecasting.store.results import pipeline_run_finish
from forecasting.store.tuning import tuned_parameters_write, tuning_trial_insert, tuning_trials_read
from forecasting.tuning.search import Candidate, candidates, searches, with_tuned

__all__ = ["TrialScore", "TuneReport", "score_trial", "tune"]

_log = logging.getLogger(__name__)

POINT_METRICS = ("mase", "smape", "mae", "rmse")


@dataclass
class TrialScore:
    metrics: dict[str, float]
    cutoffs: list[str]
    n_forecasts: int
    error: str | None = None


@dataclass
class TuneReport:
    run_id: int
    status: str
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)  # tuning_trials_read: best first per model
    chosen: dict[str, int] = field(default_factory=dict)         # model -> its best trial
    windows: dict[str, int] = field(default_factory=dict)        # partition key -> backtest windows scored on


def score_trial(config: PipelineConfig, model: str, candidate: Candidate,
                partitions: list[PartitionData]) -> TrialScore:
    """Backtest ``model`` with ``candidate`` over the partitions; metrics are means over every (series, step)
    of every partition, each first averaged over the windows (as the champion metrics are)."""
    trial_config = with_tuned(config, {model: {"params": candidate.params, "target_lags": candidate.target_lags}})
    rows, cutoffs, n_forecasts, errors = [], set(), 0, []
    for data in partitions:
        if data.panel.empty:
            continue
        # the trial's lags decide which series it can score, as in the pipeline's backtest
        spec = dataclasses.replace(data.spec, min_train=model_needs(trial_config, data.frequency, data.lengths()))
        result = run_backtest(
            data.panel, {model: lambda data=data: build_model(model, trial_config, has_exog=data.has_exog)},
            spec, freq=data.freq, exog=data.exog)
        cutoffs.update(fold.cutoff.isoformat() for fold in result.folds)
        errors += [f"{data.key} window {f['window']}: {f['error']}" for f in result.failures]
        if result.forecasts.empty:
            continue
        n_forecasts += len(result.forecasts)
        long = backtest_metrics(result.forecasts, data.panel, freq=data.freq)
        rows.append(long[long[SERIES].notna() & long[STEP].notna()])
    if not rows:
        return TrialScore({}, sorted(cutoffs), 0, "; ".join(errors) or "no backtest forecasts")
    scores = pd.concat(rows, ignore_index=True)
    pooled = scores[scores["metric"].isin(POINT_METRICS)].groupby("metric")["value"].mean()
    metrics = {name: float(value) for name, value in pooled.items() if pd.notna(value)}
    return TrialScore(metrics, sorted(cutoffs), n_forecasts, "; ".join(errors) or None)


def tune(database: Database, config: PipelineConfig, *, trials: int | None = None, triggered_by: str = "cli",
         progress: Callable[[str, int, int, float | None], None] | None = None) -> TuneReport:
    """Run every model's search on the stored series of ``config`` (ingest them first); ``trials`` caps the
    trials per model. ``progress(model, trial, total, score)`` is called after each trial."""
    found = searches(config)
    if not found:
        raise ConfigError(f"{config.name!r} has no search: add models.lightgbm.search (method, trials, space, "
                          "target_lags) to tune lightgbm_global")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, not {trials}")
    with database.connect() as conn:
        apply_migrations(conn)
        run_id, partitions = plan_run(conn, config, command="tune", triggered_by=triggered_by, owned=True)
        report = TuneReport(run_id=run_id, status="running")
        try:
            data = [load_partition(conn, run_id=run_id, key=p.key, step="tune") for p in partitions]
            report.windows = {d.key: d.n_windows for d in data}
            for model, search in found.items():
                metric = search.metric or config.backtest.champion_metric
                report.chosen.update(_search(conn, run_id, config, model, metric,
                                             candidates(search, trials=trials), data, progress))
        except BaseException as exc:
            pipeline_run_finish(conn, run_id=run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        report.status = "succeeded" if len(report.chosen) == len(found) else "failed"
        missing = sorted(set(found) - set(report.chosen))
        pipeline_run_finish(conn, run_id=run_id, status=report.status,
                            summary={"chosen": report.chosen, "models": sorted(found), "n_windows": report.windows},
                            error=f"every trial failed for {', '.join(missing)}" if missing else None)
        report.trials = tuning_trials_read(conn, run_id=run_id)
    return report


def _search(conn, run_id: int, config: PipelineConfig, model: str, metric: str, tries: list[Candidate],
            data: list[PartitionData], progress) -> dict[str, int]:
    """Score and store every trial of ``model``; record and return the best one (ties: the earlier trial)."""
    best: tuple[float, int] | None = None
    for number, candidate in enumerate(tries, start=1):
        started = time.perf_counter()
        try:
            score = score_trial(config, model, candidate, data)
        except Exception as exc:  # noqa: BLE001 - one bad combination (e.g. an invalid value) costs only itself
            _log.exception("%s trial %d failed", model, number)
            score = TrialScore({}, [], 0, f"{type(exc).__name__}: {exc}")
        value = score.metrics.get(metric)
        tuning_trial_insert(conn, run_id=run_id, model=model, trial=number, params=candidate.params,
                            target_lags=candidate.target_lags, metric=metric, score=value, metrics=score.metrics,
                            cutoffs=score.cutoffs, n_forecasts=score.n_forecasts,
                            seconds=time.perf_counter() - started, error=score.error)
        _log.info("%s trial %d/%d: %s = %s %s lags %s", model, number, len(tries), metric, value,
                  candidate.params, candidate.target_lags or "as configured")
        if value is not None and (best is None or value < best[0]):
            best = (value, number)
        if progress is not None:
            progress(model, number, len(tries), value)
    if best is None:
        _log.error("%s: every trial failed; the parameters in use are unchanged", model)
        return {}
    tuned_parameters_write(conn, config_name=config.name, model=model, run_id=run_id, trial=best[1])
    return {model: best[1]}
