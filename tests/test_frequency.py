"""One frequency table: every alias the config accepts gives one consistent season, kind, lags and calendar."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.features.build import FeatureSpec, build_features
from forecasting.frequency import ACCEPTED_ALIASES, Frequency, season_length

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
ALIASES = [a for a in ACCEPTED_ALIASES if "…" not in a] + [f"W-{d}" for d in WEEKDAYS]
WITH_MULTIPLES = ALIASES + ["15min", "2h", "2W-MON", "3W-SUN", "2D", "6ME", "2QS", "30s"]


def _config(freq: str):
    return parse_config({"name": "f", "series": [{"name": "a", "source": "sample", "params": {"dataset": "nile"},
                                                  "frequency": freq}]})


@pytest.mark.parametrize("alias", WITH_MULTIPLES)
def test_every_accepted_alias_gives_consistent_facts(alias):
    assert _config(alias).series[0].frequency == alias  # the config accepts it
    f = Frequency.parse(alias)
    assert season_length(alias) == f.season >= 1
    # calendar fields exist for every kind with a calendar, and build on a real grid of that alias
    assert (f.calendar_fields == ()) == (f.kind == "yearly")
    grid = pd.date_range("2024-01-01", periods=4, freq=alias)
    panel = pd.DataFrame({"series": "a", "ts": grid.astype("datetime64[ns]"), "y": [1.0, 2.0, 3.0, 4.0]})
    columns = build_features(panel, FeatureSpec(lags=(1,)), freq=alias).columns
    assert sorted(c for c in columns if c.startswith("cal_")) == sorted(f"cal_{c}" for c in f.calendar_fields)
    # the "auto" lags reach one season of the base frequency whenever the table has one
    if f.season > 1 and f.multiple == 1:
        assert f.season in f.lags or f.season > max(f.lags)
    assert f.lags[0] == 1 and list(f.lags) == sorted(set(f.lags))


@pytest.mark.parametrize("alias, season, kind", [
    ("min", 60, "subhourly"), ("s", 60, "subhourly"), ("15min", 4, "subhourly"), ("h", 24, "hourly"),
    ("bh", 8, "hourly"), ("cbh", 8, "hourly"), ("D", 7, "daily"), ("B", 5, "daily"), ("W-SUN", 52, "weekly"),
    ("2W-MON", 26, "weekly"), ("3W-SUN", 1, "weekly"), ("SME", 24, "monthly"), ("SMS", 24, "monthly"),
    ("BME", 12, "monthly"), ("MS", 12, "monthly"), ("BQE", 4, "quarterly"), ("QS-OCT", 4, "quarterly"),
    ("YE", 1, "yearly"), ("BYS", 1, "yearly")])
def test_season_and_kind(alias, season, kind):
    assert (Frequency.parse(alias).season, Frequency.parse(alias).kind) == (season, kind)


@pytest.mark.parametrize("alias", ["WOM-1MON", "M", "Q", "nonsense", "0D"])
def test_an_alias_outside_the_table_is_refused_by_name(alias):
    with pytest.raises(ValueError, match=f"'{alias}' is not a pandas frequency alias: s, min"):
        Frequency.parse(alias)
    with pytest.raises(Exception, match=f"'{alias}' is not a pandas frequency alias"):
        _config(alias)
