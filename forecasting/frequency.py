"""What a series' frequency implies, from one table: its seasonal period, its kind, the default ("auto") lags
and rolling windows of the global models, and its calendar fields.

``Frequency.parse(alias)`` takes any pandas alias the config accepts, with a multiple (``15min``, ``2W-MON``)
and an anchor (``W-SUN``, ``QS-OCT``): the anchor changes nothing here, a multiple divides the period (``2W``:
26, ``15min``: 4 per hour) where it divides it evenly and leaves no period otherwise. Every other module asks
this one; none keeps an alias table of its own.

| base aliases                 | kind      | period | auto lags                   | windows    | calendar fields       |
|------------------------------|-----------|--------|-----------------------------|------------|-----------------------|
| s, min                       | subhourly | 60     | 1..60, 120                  | 60         | hour, day of week     |
| ms, us, ns                   | subhourly | none   | 1..10                       | 10         | hour, day of week     |
| h (bh, cbh: business hours)  | hourly    | 24 (8) | 1..24, 48, 72, ... 168      | 24, 168    | hour, day of week     |
| D (B, C: business days)      | daily     | 7 (5)  | 1..14, 21, 28, 364          | 7, 28, 365 | day of week/month,    |
|                              |           |        |                             |            | month, week           |
| W                            | weekly    | 52     | 1..52                       | 4, 13, 52  | week, month           |
| SME, SMS (semi-month)        | monthly   | 24     | 1..12, 24                   | 3, 12      | month, quarter        |
| ME, MS, BME, BMS, CBME, CBMS | monthly   | 12     | 1..12, 24                   | 3, 12      | month, quarter        |
| QE, QS, BQE, BQS             | quarterly | 4      | 1..8                        | 4, 8       | quarter               |
| YE, YS, BYE, BYS             | yearly    | none   | 1..6                        | 3          | none                  |

The "auto" lags and windows are then capped by the series' lengths (``forecasting.models.defaults``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

__all__ = ["ACCEPTED_ALIASES", "FREQUENCY_HINT", "Frequency", "season_length"]

Kind = Literal["subhourly", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly"]


@dataclass(frozen=True)
class _KindRule:
    lags: tuple[int, ...]
    windows: tuple[int, ...]
    calendar: tuple[str, ...]


_KINDS: dict[str, _KindRule] = {
    "subhourly": _KindRule(tuple(range(1, 61)) + (120,), (60,), ("hour", "dayofweek")),
    "hourly": _KindRule(tuple(range(1, 25)) + (48, 72, 96, 120, 144, 168), (24, 168), ("hour", "dayofweek")),
    "daily": _KindRule(tuple(range(1, 15)) + (21, 28, 364), (7, 28, 365),
                       ("dayofweek", "dayofmonth", "month", "weekofyear")),
    "weekly": _KindRule(tuple(range(1, 53)), (4, 13, 52), ("weekofyear", "month")),
    "monthly": _KindRule(tuple(range(1, 13)) + (24,), (3, 12), ("month", "quarter")),
    "quarterly": _KindRule(tuple(range(1, 9)), (4, 8), ("quarter",)),
    "yearly": _KindRule(tuple(range(1, 7)), (3,), ()),
}
_SHORT_SUBHOURLY = _KindRule(tuple(range(1, 11)), (10,), ("hour", "dayofweek"))

# base alias (pandas' rule code before any "-anchor") -> (kind, seasonal period of one step)
_BASES: dict[str, tuple[str, int]] = {
    "s": ("subhourly", 60), "min": ("subhourly", 60), "ms": ("subhourly", 1), "us": ("subhourly", 1),
    "ns": ("subhourly", 1),
    "h": ("hourly", 24), "bh": ("hourly", 8), "cbh": ("hourly", 8),
    "D": ("daily", 7), "B": ("daily", 5), "C": ("daily", 5),
    "W": ("weekly", 52),
    "SME": ("monthly", 24), "SMS": ("monthly", 24),
    "ME": ("monthly", 12), "MS": ("monthly", 12), "BME": ("monthly", 12), "BMS": ("monthly", 12),
    "CBME": ("monthly", 12), "CBMS": ("monthly", 12),
    "QE": ("quarterly", 4), "QS": ("quarterly", 4), "BQE": ("quarterly", 4), "BQS": ("quarterly", 4),
    "YE": ("yearly", 1), "YS": ("yearly", 1), "BYE": ("yearly", 1), "BYS": ("yearly", 1),
}
# the aliases as a user writes them (each also with a multiple, and the weekly ones with any weekday)
ACCEPTED_ALIASES = ("s", "min", "ms", "us", "ns", "h", "bh", "cbh", "D", "B", "C", "W-MON … W-SUN", "SME", "SMS",
                    "ME", "MS", "BME", "BMS", "CBME", "CBMS", "QE", "QS", "BQE", "BQS", "YE", "YS", "BYE", "BYS")
FREQUENCY_HINT = ("a pandas frequency alias: " + ", ".join(ACCEPTED_ALIASES)
                  + " (with a multiple such as 15min or 2W-MON where needed)")


@dataclass(frozen=True)
class Frequency:
    """A parsed frequency alias and everything the models derive from it.

    Attributes:
        alias: the alias as given (``"W-SUN"``, ``"15min"``).
        base: pandas' rule code without its anchor (``"W"``, ``"min"``).
        multiple: the alias's multiple (15 for ``"15min"``).
        kind: subhourly, hourly, daily, weekly, monthly, quarterly or yearly.
        season: the seasonal period in steps (1: none).
        lags, rolling_windows: the "auto" target lags and rolling windows before the length cap.
        calendar_fields: the calendar features of the global models.
    """

    alias: str
    base: str
    multiple: int
    kind: Kind
    season: int
    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...]
    calendar_fields: tuple[str, ...]

    @classmethod
    def parse(cls, alias: str) -> Frequency:
        """Raises ValueError naming the accepted aliases when pandas or this table does not know ``alias``."""
        return _parse(alias)


@functools.cache
def _parse(alias: str) -> Frequency:
    from pandas.tseries.frequencies import to_offset

    try:
        offset = to_offset(alias)
    except (ValueError, TypeError):
        raise ValueError(f"{alias!r} is not {FREQUENCY_HINT}") from None
    base = offset.rule_code.split("-")[0]
    if base not in _BASES or offset.n < 1:
        raise ValueError(f"{alias!r} is not {FREQUENCY_HINT}")
    kind, period = _BASES[base]
    rule = _SHORT_SUBHOURLY if kind == "subhourly" and period == 1 else _KINDS[kind]
    return Frequency(alias=alias, base=base, multiple=offset.n, kind=kind, season=_divided(period, offset.n),
                     lags=rule.lags, rolling_windows=rule.windows, calendar_fields=rule.calendar)


def _divided(period: int, multiple: int) -> int:
    # two-weekly data has 26 steps a year, but three-weekly data has no whole number of steps in one
    if multiple == 1:
        return period
    return period // multiple if period % multiple == 0 else 1


def season_length(freq: str | None) -> int:
    """The seasonal period of ``freq`` in steps (1 when there is none or no frequency)."""
    return Frequency.parse(freq).season if freq else 1
