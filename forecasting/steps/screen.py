"""Which series of a partition can be modelled: a series that cannot is skipped with its reason, so it
never costs the others their forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.config import PipelineConfig
from forecasting.folds import auto_windows
from forecasting.panel import SERIES, Y, season_length
from forecasting.store.steps import Skip
from forecasting.validation import MAX_ABS_VALUE

__all__ = ["backtest_windows", "min_points", "min_train_points", "screen_series"]


def min_points(config: PipelineConfig, n_windows: int | None = None) -> int:
    """Points a series needs: the largest lag plus one row to learn from, before ``n_windows`` backtest windows
    (None: the configured number; with "auto", one window, since a longer series is scored on more)."""
    pre, backtest = config.preprocessing, config.backtest
    if n_windows is None:
        n_windows = 1 if backtest.n_windows == "auto" else backtest.n_windows
    step = backtest.step or pre.horizon
    span = pre.horizon + (n_windows - 1) * step
    return min_train_points(config) + span


def min_train_points(config: PipelineConfig) -> int:
    """Training points a series needs at a backtest cutoff to be scored in that window."""
    return _largest_lag(config) + 1


def backtest_windows(panel: pd.DataFrame, config: PipelineConfig, freq: str) -> int:
    """The backtest windows of a screened partition: the configured number, or with "auto" as many as the
    lengths of its series allow (``auto_windows``). Every step resolves it from the same screened panel."""
    setting = config.backtest.n_windows
    if setting != "auto":
        return setting
    return auto_windows(panel.groupby(SERIES).size(), horizon=config.preprocessing.horizon,
                        season=season_length(freq), step=config.backtest.step)


def _largest_lag(config: PipelineConfig) -> int:
    # "auto" lags are capped by the series' own lengths, so only the first lag is required
    lags = config.preprocessing.target_lags
    return 1 if lags == "auto" else max(lags)


def _need_text(config: PipelineConfig) -> str:
    span = "one backtest window" if config.backtest.n_windows == "auto" else "backtest span"
    return f"largest lag {_largest_lag(config)} + 1 + {span}"


def screen_series(panel: pd.DataFrame, config: PipelineConfig) -> tuple[pd.DataFrame, list[Skip]]:
    """The panel without the series that cannot be modelled, and a skip (with the reason) for each of those."""
    if panel.empty:
        return panel, []
    need = min_points(config)
    stats = panel.groupby(SERIES, sort=True)[Y].agg(["size", "min", "max"])
    finite = panel[Y].pipe(np.isfinite).groupby(panel[SERIES]).all()
    largest = panel[Y].abs().groupby(panel[SERIES]).max()
    skips = []
    for series_id, row in stats.iterrows():
        reason = None
        if not finite[series_id]:
            reason = "non-finite values (NaN or infinity) in the stored data"
        elif largest[series_id] > MAX_ABS_VALUE:
            reason = f"values too large to model (max |y| = {largest[series_id]:.3g} > {MAX_ABS_VALUE:.0e})"
        elif row["size"] < need:
            reason = f"too short: {int(row['size'])} points, needs at least {need} ({_need_text(config)})"
        elif row["min"] == row["max"]:
            reason = f"constant series (every value is {row['min']:.6g}): nothing to learn"
        if reason:
            skips.append(Skip(int(series_id), reason))
    skipped = {s.series_id for s in skips}
    kept = panel[~panel[SERIES].isin(skipped)].reset_index(drop=True) if skipped else panel
    return kept, skips
