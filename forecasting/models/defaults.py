"""Frequency-aware default features of the global models, used wherever the config says "auto".

Lags and rolling windows must reach the frequency's seasonal periods (a weekly cycle in hourly data is 168
steps), and must not exceed what the series can support: a lag longer than the history leaves only missing
values. ``forecasting.frequency`` holds the table of lags, windows and calendar fields per frequency;
``auto_features`` applies it to one panel: every lag and window is capped at half the length of a short series
(the 25% quantile of the lengths), so a short panel keeps the first lags and loses the long ones, never the
other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES
from forecasting.frequency import Frequency

__all__ = ["AutoFeatures", "auto_features", "auto_features_for"]


@dataclass(frozen=True)
class AutoFeatures:
    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...]
    calendar: bool


def auto_features(panel: pd.DataFrame, freq: str | None) -> AutoFeatures:
    """The default lags, windows and calendar switch for ``panel`` at ``freq`` (module docstring)."""
    return auto_features_for(panel.groupby(SERIES, sort=False).size().to_numpy(), freq)


def auto_features_for(lengths: np.ndarray, freq: str | None) -> AutoFeatures:
    """``auto_features`` of a panel whose series have these lengths: only the lengths decide."""
    rule = Frequency.parse(freq) if freq else Frequency.parse("YS")  # no frequency: no cycle, no calendar
    lengths = np.asarray(lengths)
    short = int(np.quantile(lengths, 0.25)) if len(lengths) else 2
    cap = max(1, short // 2)
    lags = tuple(k for k in rule.lags if k <= cap) or (1,)
    windows = tuple(w for w in rule.rolling_windows if w <= cap)
    calendar = bool(rule.calendar_fields) and freq is not None
    return AutoFeatures(lags=lags, rolling_windows=windows, calendar=calendar)
