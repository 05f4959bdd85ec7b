"""Step ``select``: each series' champion from the run's backtest, for every partition of the run.

It reads one partition's metrics at a time, so its memory depends on the partition size, not on the
number of series. It also writes the run's aggregate metrics (per model and step, and per model; computed
in the database) and records a skip for a series no model could forecast in the backtest.
"""

from __future__ import annotations

import logging

import pandas as pd
import psycopg

from forecasting.evaluation import choose_champions
from forecasting.panel import SERIES
from forecasting.steps.data import run_config
from forecasting.steps.record import recorded
from forecasting.store.results import backtest_metrics_aggregate, backtest_metrics_read, champions_write
from forecasting.store.selectors import series_names
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
    for key in partition_keys(conn, run_id=run_id):
        series_ids = partition_read(conn, run_id=run_id, key=key)[3]
        champions = _champions(conn, run_id, series_ids, config)
        champions_write(conn, run_id=run_id, frame=champions.assign(model_version_id=None))
        for model, group in champions.groupby("model"):
            counts[model] = counts.get(model, 0) + len(group)
            scores.append(group["score"].rename(model))
        shown += list(champions[["series_id", "model", "score"]].itertuples(index=False, name=None))[:_SHOWN]
        without += sorted(set(series_ids) - set(champions["series_id"].astype(int)) - already)
    skips_write(conn, run_id=run_id, step="select", partition_key="", skips=[
        Skip(i, "no model produced a finite backtest forecast (see the backtest skips of its models)")
        for i in without])
    names = series_names(conn, series_ids=[s for s, _, _ in shown[:_SHOWN]] + without[:50])
    _log_table(counts, scores, shown[:_SHOWN], names, config.backtest.champion_metric)
    return {"n_champions": sum(counts.values()), "by_model": counts,
            "without_champion": [names.get(i, str(i)) for i in without[:50]], "n_without_champion": len(without)}


def _champions(conn: psycopg.Connection, run_id: int, series_ids: list[int], config) -> pd.DataFrame:
    metric = config.backtest.champion_metric
    metrics = backtest_metrics_read(conn, run_id=run_id, mode="latest", series_ids=series_ids, metric=metric)
    if metrics.empty:
        return pd.DataFrame({"series_id": pd.Series(dtype="int64"), "model": pd.Series(dtype=str),
                             "score": pd.Series(dtype="float64"), "metric": pd.Series(dtype=str)})
    chosen = choose_champions(metrics.rename(columns={"series_id": SERIES}), metric=metric,
                              model_order=config.models.enabled)
    return chosen.rename(columns={SERIES: "series_id"})


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
