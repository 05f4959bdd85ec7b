"""Step ``select``: each series' champion from the run's backtest, over every partition at once.

Also writes the run's aggregate metrics (per model and step, and per model) from the per-series ones the
partitions stored, and records a skip for a series no model could forecast in the backtest.
"""

from __future__ import annotations

import logging

import pandas as pd
import psycopg

from forecasting.evaluation import choose_champions
from forecasting.panel import SERIES, STEP
from forecasting.steps.data import run_config
from forecasting.steps.record import recorded
from forecasting.store.results import backtest_metrics_read, backtest_metrics_write, champions_write
from forecasting.store.selectors import series_names
from forecasting.store.steps import Skip, planned_series_ids, skipped_series_ids, skips_write

__all__ = ["select_champions"]

_log = logging.getLogger(__name__)


def select_champions(conn: psycopg.Connection, *, run_id: int) -> dict:
    return recorded(conn, run_id=run_id, step="select", key="", work=lambda: _select(conn, run_id))


def _select(conn: psycopg.Connection, run_id: int) -> dict:
    config = run_config(conn, run_id)
    planned_ids = planned_series_ids(conn, run_id=run_id)
    champions = pd.DataFrame(columns=["series_id", "model", "score", "metric"])
    for mode in config.backtest.modes:
        metrics = backtest_metrics_read(conn, run_id=run_id, mode=mode)
        backtest_metrics_write(conn, run_id=run_id, mode=mode, frame=_aggregates(metrics), series_ids=None)
        if mode == "latest" and not metrics.empty:
            chosen = choose_champions(metrics.rename(columns={"series_id": SERIES}),
                                      metric=config.backtest.champion_metric, model_order=config.models.enabled)
            champions = chosen.rename(columns={SERIES: "series_id"})
    champions_write(conn, run_id=run_id, frame=champions.assign(model_version_id=None))
    already = skipped_series_ids(conn, run_id=run_id, partition_key=None)  # skipped earlier, with their reason
    without = sorted(set(planned_ids) - set(champions["series_id"].astype(int)) - already)
    skips = [Skip(i, "no model produced a finite backtest forecast (see the features and backtest skips)")
             for i in without]
    skips_write(conn, run_id=run_id, step="select", partition_key="", skips=skips)
    names = series_names(conn, series_ids=planned_ids)
    _log_table(champions, names)
    counts = champions["model"].value_counts().to_dict()
    return {"n_champions": len(champions), "by_model": {str(k): int(v) for k, v in counts.items()},
            "without_champion": [names.get(i, str(i)) for i in without][:50], "n_without_champion": len(without)}


def _aggregates(metrics: pd.DataFrame) -> pd.DataFrame:
    """Means over series per (model, step) and per model (series NULL; step NULL for the latter)."""
    columns = ["model", "series_id", STEP, "metric", "value"]
    if metrics.empty:
        return pd.DataFrame(columns=columns)
    by_step = metrics.groupby(["model", STEP, "metric"], as_index=False)["value"].mean().assign(series_id=None)
    per_series = metrics.groupby(["model", "series_id", "metric"], as_index=False)["value"].mean()
    overall = per_series.groupby(["model", "metric"], as_index=False)["value"].mean().assign(series_id=None,
                                                                                           **{STEP: None})
    return pd.concat([by_step, overall], ignore_index=True)[columns]


def _log_table(champions: pd.DataFrame, names: dict[int, str]) -> None:
    if champions.empty:
        _log.warning("no series has a champion")
        return
    by_model = champions.groupby("model")["score"].agg(["size", "median"]).sort_values("size", ascending=False)
    lines = [f"{'model':<18}{'series':>8}{'median score':>14}"]
    lines += [f"{model:<18}{int(row['size']):>8}{row['median']:>14.4g}" for model, row in by_model.iterrows()]
    _log.info("champions by model (%s):\n%s", champions["metric"].iloc[0], "\n".join(lines))
    for row in champions.head(20).itertuples(index=False):
        _log.info("  %-30s %-16s %s=%.4g", names.get(row.series_id, row.series_id), row.model, row.metric, row.score)
    if len(champions) > 20:
        _log.info("  ... and %d more series", len(champions) - 20)
