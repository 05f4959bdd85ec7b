"""Step ``select``: each series' champion from the run's backtest, for every partition of the run.

The champion rule is ``backtest.champion_strategy``; by default (``auto``) each partition uses the simplest rule
whose score on backtest windows it was not chosen on is within one standard error of the best rule's, so with few
windows a series keeps the pooled best model unless its own best is clearly and consistently better.

A series too short for one backtest window of every model that can fit it has no score; its champion is the
partition's pooled best model among those that can fit it (``_untested_champions``).

It reads one partition's metrics at a time, so its memory depends on the partition size, not on the
number of series. It also writes the run's aggregate metrics (per model and step, and per model; computed
in the database) and records a skip for a series no model could forecast in the backtest.
"""

from __future__ import annotations

import logging

import pandas as pd
import psycopg

from forecasting.backtesting.evaluation import (
    choice_scores,
    choose_by_strategy,
    choose_champions,
    select_strategy,
)
from forecasting.features.panel import SERIES, STEP
from forecasting.steps.data import load_partition, run_config
from forecasting.steps.record import recorded
from forecasting.store.results import (
    backtest_errors_read,
    backtest_metrics_aggregate,
    backtest_metrics_read,
    champions_write,
)
from forecasting.store.selectors import panel_read, series_names, stored_series_by_id
from forecasting.store.steps import (
    Skip,
    partition_keys,
    partition_read,
    planned_series_ids,
    skipped_series_ids,
    skips_write,
)

__all__ = ["select_champions"]

_log = logging.getLogger(__name__)

_SHOWN = 20  # champions listed by name in the log; the rest are counted
UNTESTED = "untested"  # champions.strategy of a series with no backtest score (_untested_champions)


def select_champions(conn: psycopg.Connection, *, run_id: int) -> dict:
    return recorded(conn, run_id=run_id, step="select", key="", work=lambda: _select(conn, run_id))


def _select(conn: psycopg.Connection, run_id: int) -> dict:
    planned = planned_series_ids(conn, run_id=run_id)
    config = run_config(conn, run_id, target_names=list(series_names(conn, series_ids=planned[:1]).values()))
    for mode in config.backtest.modes:
        backtest_metrics_aggregate(conn, run_id=run_id, mode=mode)
    # skipped by the partition steps, with their reason
    already = skipped_series_ids(conn, run_id=run_id, partition_key=None, excluding_step="select")
    counts: dict[str, int] = {}
    scores: list[pd.Series] = []
    shown: list[tuple[int, str, float]] = []
    without: list[int] = []
    strategies: dict[str, str] = {}
    for key in partition_keys(conn, run_id=run_id):
        freq, _, _, series_ids = partition_read(conn, run_id=run_id, key=key)
        champions, strategies[key] = _champions(conn, run_id, series_ids, freq, config)
        untested = sorted(set(series_ids) - set(champions["series_id"].astype(int)) - already)
        champions = pd.concat([champions.assign(strategy=strategies[key]),
                               _untested_champions(conn, run_id, key, series_ids, untested, config)
                               .assign(strategy=UNTESTED)], ignore_index=True)
        champions_write(conn, run_id=run_id, frame=champions.assign(model_version_id=None))
        for model, group in champions.groupby("model"):
            counts[model] = counts.get(model, 0) + len(group)
            scores.append(group["score"].dropna().rename(model))
        shown += list(champions[["series_id", "model", "score"]].itertuples(index=False, name=None))[:_SHOWN]
        without += sorted(set(series_ids) - set(champions["series_id"].astype(int)) - already)
    skips_write(conn, run_id=run_id, step="select", partition_key="", skips=[
        Skip(i, f"no model has a finite backtest {config.backtest.champion_metric}: none produced a finite "
                "forecast (see the backtest skips of its models), or the metric is undefined for the series")
        for i in without])
    names = series_names(conn, series_ids=[s for s, _, _ in shown[:_SHOWN]] + without[:50])
    _log_table(counts, scores, shown[:_SHOWN], names, config.backtest.champion_metric)
    return {"n_champions": sum(counts.values()), "by_model": counts, "strategy": strategies,
            "without_champion": [names.get(i, str(i)) for i in without[:50]], "n_without_champion": len(without)}


def _champions(conn: psycopg.Connection, run_id: int, series_ids: list[int], freq: str,
               config) -> tuple[pd.DataFrame, str]:
    """The partition's champions and the strategy that chose them."""
    metric, strategy = config.backtest.champion_metric, config.backtest.champion_strategy
    if strategy != "per_series" and metric != "rmse":
        scores = _window_scores(conn, run_id, series_ids, freq, metric)
        if not scores.empty:
            if strategy == "auto":
                strategy, held_out = select_strategy(scores, metric=metric, model_order=config.models.enabled)
                _log.info("champion strategy %s, the simplest within one standard error of the best (held-out %s: %s)",
                          strategy, metric,
                          ", ".join(f"{k} {v:.4g}" for k, v in held_out.items()) or "one window, nothing held out")
            chosen = choose_by_strategy(scores, strategy, metric=metric, model_order=config.models.enabled)
            return chosen.dropna(subset=["score"]).rename(columns={SERIES: "series_id"}), strategy
    metrics = backtest_metrics_read(conn, run_id=run_id, mode="latest", series_ids=series_ids, metric=metric)
    if metrics.empty:
        return pd.DataFrame({"series_id": pd.Series(dtype="int64"), "model": pd.Series(dtype=str),
                             "score": pd.Series(dtype="float64"), "metric": pd.Series(dtype=str)}), "per_series"
    chosen = choose_champions(metrics.rename(columns={"series_id": SERIES}), metric=metric,
                              model_order=config.models.enabled)
    return chosen.rename(columns={SERIES: "series_id"}), "per_series"


def _untested_champions(conn: psycopg.Connection, run_id: int, key: str, series_ids: list[int], untested: list[int],
                        config) -> pd.DataFrame:
    """Champions of series with no backtest score, because they are too short for one backtest window of every
    model that can fit them: among the models that can, the one with the lowest median score over the
    partition's scored series (the pooled best), or the first in the configured order when none was scored.
    Their score stays empty: nothing measured it."""
    metric = config.backtest.champion_metric
    columns = {"series_id": pd.Series(dtype="int64"), "model": pd.Series(dtype=str),
               "score": pd.Series(dtype="float64"), "metric": pd.Series(dtype=str)}
    if not untested:
        return pd.DataFrame(columns)
    data = load_partition(conn, run_id=run_id, key=key, step="select", config=config)
    takes = data.spec.series_models(data.lengths(), config.models.enabled)
    metrics = backtest_metrics_read(conn, run_id=run_id, mode="latest", series_ids=series_ids, metric=metric)
    pooled = metrics.groupby(["model", "series_id"])["value"].mean().groupby("model").median() \
        if not metrics.empty else pd.Series(dtype="float64")
    enabled = list(config.models.enabled)
    order = sorted(enabled, key=lambda m: (pooled.get(m, float("inf")), enabled.index(m)))
    rows = []
    for series_id in untested:
        able = [m for m in order if series_id in takes[m]]
        if able:
            rows.append({"series_id": int(series_id), "model": able[0], "score": float("nan"), "metric": metric})
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns)


def _window_scores(conn: psycopg.Connection, run_id: int, series_ids: list[int], freq: str,
                   metric: str) -> pd.DataFrame:
    """Per (window, model, series, step) scores from the stored backtest forecasts (``choice_scores``: MASE as the
    stored backtest metrics scale it, each window by its own training data)."""
    errors = backtest_errors_read(conn, run_id=run_id, mode="latest", series_ids=series_ids)
    if errors.empty:
        return errors
    panel = None
    if metric == "mase":
        pinned = stored_series_by_id(conn, series_ids=series_ids, run_id=run_id)  # the run's snapshot
        panel = panel_read(conn, series_ids=list(pinned), pinned=pinned)
    forecasts = errors.rename(columns={"series_id": SERIES, "step": STEP})
    return choice_scores(forecasts, panel, freq=freq, metric=metric)


def _log_table(counts: dict[str, int], scores: list[pd.Series], shown: list, names: dict[int, str],
               metric: str) -> None:
    if not counts:
        _log.warning("no series has a champion")
        return
    medians = {model: pd.concat([s for s in scores if s.name == model]).median() for model in counts}
    lines = [f"{'model':<18}{'series':>8}{'median ' + metric:>14}"]
    lines += [f"{m:<18}{counts[m]:>8}{medians[m]:>14.4g}" for m in sorted(counts, key=counts.get, reverse=True)]
    _log.info("champions by model:\n%s", "\n".join(lines))
    for series_id, model, score in shown:
        _log.info("  %-30s %-16s %s=%.4g", names.get(series_id, series_id), model, metric, score)
    if sum(counts.values()) > len(shown):
        _log.info("  ... and %d more series", sum(counts.values()) - len(shown))
