"""The long "panel" format every modeling stage shares: one row per (series, ts), sorted, regular."""

from __future__ import annotations

import pandas as pd

__all__ = ["SERIES", "STEP", "TS", "Y", "YHAT", "fill_gaps", "future_timestamps", "validate_panel"]

SERIES = "series"   # series name (str)
TS = "ts"           # naive UTC datetime64[ns]
Y = "y"             # float64 target or feature value
STEP = "step"       # 1..horizon, steps ahead of the forecast origin
YHAT = "yhat"       # point forecast


def validate_panel(panel: pd.DataFrame) -> None:
    """Raise ValueError naming the problem unless ``panel`` follows the contract."""
    missing = [c for c in (SERIES, TS, Y) if c not in panel.columns]
    if missing:
        raise ValueError(f"panel lacks column(s) {missing}")
    if panel[Y].isna().any():
        bad = panel.loc[panel[Y].isna(), SERIES].unique()[:5].tolist()
        raise ValueError(f"panel has missing y values in series {bad}")
    keys = panel[[SERIES, TS]]
    if keys.duplicated().any():
        raise ValueError("panel has duplicate (series, ts) rows")
    ordered = panel.sort_values([SERIES, TS], kind="stable").index
    if not (ordered == panel.index).all():
        raise ValueError("panel must be sorted by (series, ts) with a default index")


def future_timestamps(last_ts: pd.Timestamp, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after ``last_ts`` on the series' frequency grid."""
    return pd.date_range(last_ts, periods=horizon + 1, freq=freq)[1:]


def fill_gaps(panel: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Reindex every series to its frequency grid between its first and last timestamp and forward-fill.

    Lag features count rows, so a missing timestamp would silently turn "lag 1" into "lag 2"; filling keeps
    every lag equal to its number of periods. Returns the filled panel and the count filled per series.
    """
    pieces, filled = [], {}
    for name, group in panel.groupby(SERIES, sort=True):
        grid = pd.date_range(group[TS].iloc[0], group[TS].iloc[-1], freq=freq)
        if len(grid) == len(group) and (grid == pd.DatetimeIndex(group[TS])).all():
            pieces.append(group)
            continue
        values = group.set_index(TS)[Y].reindex(grid.union(pd.DatetimeIndex(group[TS]))).ffill()
        values = values.loc[grid]  # off-grid timestamps keep no row of their own
        filled[name] = int(len(grid) - pd.DatetimeIndex(group[TS]).isin(grid).sum())
        pieces.append(pd.DataFrame({SERIES: name, TS: grid.astype("datetime64[ns]"), Y: values.to_numpy()}))
    if not pieces:
        return panel, filled
    return pd.concat(pieces, ignore_index=True), filled
