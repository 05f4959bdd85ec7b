"""Backtest scoring and champion choice, shared by the pipeline and the accuracy benchmark (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from forecasting.intervals import apply_intervals, conformal_quantiles, series_scale
from forecasting.metrics import mase_scale, metric_columns, score_forecasts
from forecasting.panel import SERIES, STEP, TS, YHAT, Y, season_length

__all__ = ["backtest_metrics", "choose_champions", "cross_conformal"]


def cross_conformal(forecasts: pd.DataFrame, scale: pd.Series, levels: tuple[int, ...]) -> pd.DataFrame:
    """Backtest intervals for each window calibrated on the other windows only, so coverage is honest."""
    pieces = []
    for window in sorted(forecasts["window"].unique()):
        others = forecasts[forecasts["window"] != window]
        if others.empty:
            continue
        this = forecasts[forecasts["window"] == window]
        pieces.append(apply_intervals(this, conformal_quantiles(others, scale, levels), scale, levels))
    return pd.concat(pieces, ignore_index=True) if pieces else forecasts.iloc[0:0]


def _window_scores(forecasts: pd.DataFrame, panel: pd.DataFrame, freq: str, levels: tuple[int, ...]) -> pd.DataFrame:
    """Scores per (window, model, series, step); MASE is scaled by each window's own training data (M4's rule)."""
    season = season_length(freq)
    with_intervals = cross_conformal(forecasts, series_scale(panel), levels) if levels else forecasts.iloc[0:0]
    use_levels = levels if not with_intervals.empty else ()
    source = with_intervals if use_levels else forecasts
    pieces = []
    for (window, cutoff), part in source.groupby(["window", "cutoff"], sort=True):
        insample = mase_scale(panel[panel[TS] <= cutoff], season=season)
        part = part[["model", SERIES, STEP, Y, YHAT] + [c for c in part.columns if c[:3] in ("lo_", "hi_")]]
        pieces.append(score_forecasts(part, insample_scale=insample, levels=use_levels).assign(window=window))
    return pd.concat(pieces, ignore_index=True)


def backtest_metrics(forecasts: pd.DataFrame, panel: pd.DataFrame, *, freq: str,
                     levels: tuple[int, ...] = ()) -> pd.DataFrame:
    """Long metrics: per (model, series, step) averaged over windows, then means per (model, step) and per
    model (series/step None = aggregated). Columns model, series, step, metric, value."""
    scores = _window_scores(forecasts, panel, freq, levels)
    cols = metric_columns(scores)
    per_series = (scores.groupby(["model", SERIES, STEP], as_index=False)[cols].mean()
                  .melt(id_vars=["model", SERIES, STEP], value_vars=cols, var_name="metric"))
    by_step = per_series.groupby(["model", STEP, "metric"], as_index=False)["value"].mean().assign(**{SERIES: None})
    overall = per_series.groupby(["model", "metric"], as_index=False)["value"].mean().assign(
        **{SERIES: None, STEP: None})
    return pd.concat([per_series, by_step, overall], ignore_index=True)


def choose_champions(metrics: pd.DataFrame, *, metric: str, model_order: Sequence[str]) -> pd.DataFrame:
    """Per series, the model with the lowest mean backtest ``metric`` (ties go to the earlier model).

    Returns columns series, model, score, metric.
    """
    rows = metrics[(metrics["metric"] == metric) & metrics[SERIES].notna() & metrics[STEP].notna()]
    means = rows.groupby([SERIES, "model"], as_index=False)["value"].mean().dropna(subset=["value"])
    order = {name: i for i, name in enumerate(model_order)}
    means = means.assign(order=means["model"].map(order)).sort_values([SERIES, "value", "order"])
    best = means.groupby(SERIES, as_index=False).first()[[SERIES, "model", "value"]]
    return best.rename(columns={"value": "score"}).assign(metric=metric)
