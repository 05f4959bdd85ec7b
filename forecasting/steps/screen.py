"""Which series of a partition can be modelled: a series that cannot is skipped with its reason, so it
never costs the others their forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.config import PipelineConfig
from forecasting.panel import SERIES, Y
from forecasting.store.steps import Skip
from forecasting.validation import MAX_ABS_VALUE

__all__ = ["min_points", "screen_series"]


def min_points(config: PipelineConfig) -> int:
    """Points a series needs: the largest lag plus one row to learn from, before the backtest windows."""
    pre, backtest = config.preprocessing, config.backtest
    step = backtest.step or pre.horizon
    span = pre.horizon + (backtest.n_windows - 1) * step
    return _largest_lag(config) + 1 + span


def _largest_lag(config: PipelineConfig) -> int:
    # "auto" lags are capped by the series' own lengths, so only the first lag is required
    lags = config.preprocessing.target_lags
    return 1 if lags == "auto" else max(lags)


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
            reason = (f"too short: {int(row['size'])} points, needs at least {need} (largest lag "
                      f"{_largest_lag(config)} + 1 + backtest span)")
        elif row["min"] == row["max"]:
            reason = f"constant series (every value is {row['min']:.6g}): nothing to learn"
        if reason:
            skips.append(Skip(int(series_id), reason))
    skipped = {s.series_id for s in skips}
    kept = panel[~panel[SERIES].isin(skipped)].reset_index(drop=True) if skipped else panel
    return kept, skips
