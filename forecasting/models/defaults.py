"""Frequency-aware default features of the global models, used wherever the config says "auto".

Lags and rolling windows must reach the frequency's seasonal periods (a weekly cycle in hourly data is 168
steps), and must not exceed what the series can support: a lag longer than the history leaves only missing
values. The table below is the rule; ``auto_features`` applies it to one panel:

| frequency | seasonal periods | lags                              | rolling windows | calendar fields        |
|-----------|------------------|-----------------------------------|-----------------|------------------------|
| hourly    | 24, 168          | 1..24, 48, 72, 96, 120, 144, 168  | 24, 168         | hour, day of week      |
| daily     | 7, 365           | 1..14, 21, 28, 364                | 7, 28, 365      | day of week/month, ... |
| weekly    | 52               | 1..52                             | 4, 13, 52       | week, month            |
| monthly   | 12               | 1..12, 24                         | 3, 12           | month, quarter         |
| quarterly | 4                | 1..8                              | 4, 8            | quarter                |
| yearly    | none             | 1..6                              | 3               | none                   |

Every lag and window is capped at half the length of a short series (the 25% quantile of the lengths), so a
short panel keeps the first lags and loses the long ones, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.panel import SERIES

__all__ = ["AutoFeatures", "auto_features", "frequency_kind"]


@dataclass(frozen=True)
class _Rule:
    lags: tuple[int, ...]
    windows: tuple[int, ...]
    calendar: bool


_RULES: dict[str, _Rule] = {
    "hourly": _Rule(tuple(range(1, 25)) + (48, 72, 96, 120, 144, 168), (24, 168), True),
    "daily": _Rule(tuple(range(1, 15)) + (21, 28, 364), (7, 28, 365), True),
    "weekly": _Rule(tuple(range(1, 53)), (4, 13, 52), True),
    "monthly": _Rule(tuple(range(1, 13)) + (24,), (3, 12), True),
    "quarterly": _Rule(tuple(range(1, 9)), (4, 8), True),
    "yearly": _Rule(tuple(range(1, 7)), (3,), False),
}
_BY_BASE = {"h": "hourly", "H": "hourly", "bh": "hourly", "BH": "hourly", "D": "daily", "B": "daily",
            "C": "daily", "W": "weekly", "M": "monthly", "MS": "monthly", "ME": "monthly", "SM": "monthly",
            "SMS": "monthly", "Q": "quarterly", "QS": "quarterly", "QE": "quarterly", "BQ": "quarterly",
            "BQS": "quarterly", "Y": "yearly", "YS": "yearly", "YE": "yearly", "A": "yearly", "AS": "yearly"}


def frequency_kind(freq: str | None) -> str:
    """hourly, daily, weekly, monthly, quarterly or yearly for a pandas alias; "yearly" (no cycle) otherwise."""
    if not freq:
        return "yearly"
    base = pd.tseries.frequencies.to_offset(freq).rule_code.split("-")[0]
    return _BY_BASE.get(base, "yearly")


@dataclass(frozen=True)
class AutoFeatures:
    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...]
    calendar: bool


def auto_features(panel: pd.DataFrame, freq: str | None) -> AutoFeatures:
    """The default lags, windows and calendar switch for ``panel`` at ``freq`` (module docstring)."""
    rule = _RULES[frequency_kind(freq)]
    lengths = panel.groupby(SERIES, sort=False).size().to_numpy()
    short = int(np.quantile(lengths, 0.25)) if len(lengths) else 2
    cap = max(1, short // 2)
    lags = tuple(k for k in rule.lags if k <= cap) or (1,)
    windows = tuple(w for w in rule.windows if w <= cap)
    calendar = rule.calendar and freq is not None
    return AutoFeatures(lags=lags, rolling_windows=windows, calendar=calendar)
