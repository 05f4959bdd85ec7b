"""Frequency-aware "auto" features and target transforms of the global models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.features.panel import SERIES, TS, Y
from forecasting.frequency import Frequency
from forecasting.models.defaults import auto_features
from forecasting.models.recursive import AutoSpec, LinearGlobal, feature_spec


def _panel(lengths: list[int], freq: str, *, trend: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(lengths):
        y = 100 + i + trend * np.arange(n) + rng.normal(0, 1, n)
        frames.append(pd.DataFrame({SERIES: f"s{i:03d}", TS: pd.date_range("2001-01-01", periods=n, freq=freq),
                                    Y: y}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("freq, kind", [("h", "hourly"), ("D", "daily"), ("W-SUN", "weekly"), ("MS", "monthly"),
                                        ("QS-JAN", "quarterly"), ("YS-JAN", "yearly"), ("15min", "subhourly")])
def test_frequency_kind(freq, kind):
    assert Frequency.parse(freq).kind == kind


@pytest.mark.parametrize("freq, period, window", [("h", 168, 168), ("D", 7, 7), ("W-SUN", 52, 52), ("MS", 12, 12),
                                                  ("QS-JAN", 4, 4)])
def test_long_series_get_lags_and_windows_covering_the_seasonal_period(freq, period, window):
    spec = auto_features(_panel([800] * 4, freq), freq)
    assert period in spec.lags and window in spec.rolling_windows and spec.calendar


def test_lags_never_exceed_half_a_short_series():
    spec = auto_features(_panel([30, 30, 30, 400], "W-SUN"), "W-SUN")
    assert max(spec.lags) <= 15 and spec.lags[:3] == (1, 2, 3)
    assert all(w <= 15 for w in spec.rolling_windows)
    assert auto_features(_panel([2, 2], "MS"), "MS").lags == (1,)


def test_yearly_has_no_calendar_fields():
    assert not auto_features(_panel([40] * 3, "YS-JAN"), "YS-JAN").calendar


def _config(**preprocessing):
    return parse_config({"name": "t", "series": [{"name": "x", "source": "sample", "params": {"dataset": "nile"}}],
                         "preprocessing": {"horizon": 4, **preprocessing}})


def test_auto_is_the_default_and_a_list_overrides_it():
    assert isinstance(feature_spec(_config(), has_exog=False), AutoSpec)
    fixed = feature_spec(_config(target_lags=[1, 2], rolling_windows=[], calendar=False), has_exog=False)
    assert (fixed.lags, fixed.rolling_windows, fixed.calendar) == ((1, 2), (), False)
    resolved = feature_spec(_config(), has_exog=False, panel=_panel([200] * 3, "MS"), freq="MS")
    assert 12 in resolved.lags and resolved.calendar


def test_a_global_model_needs_a_full_row_of_the_lags_a_config_lists_and_two_points_with_auto_lags():
    lengths = pd.Series([200] * 3)
    assert LinearGlobal.min_points(_config(), freq="MS", lengths=lengths) == 2  # auto: capped to fit short series
    assert LinearGlobal.min_points(_config(target_lags=[1, 30], rolling_windows=[]), freq="MS",
                                   lengths=lengths) == 30 + 1
    # listed lags next to "auto" windows: the windows this partition resolves count (3 and 12 for 200 months)
    assert LinearGlobal.min_points(_config(target_lags=[1, 2]), freq="MS", lengths=lengths) == 12 + 1


def test_model_resolves_auto_features_and_chooses_transforms_at_fit():
    panel = _panel([120] * 5, "MS", trend=2.0)
    model = LinearGlobal.from_config(_config(), has_exog=False).fit(panel, freq="MS")
    assert 12 in model.spec.lags
    # strongly trending series: only differencing lets a global model continue the trend past the training range
    assert model.transform_names_ == ("diff", "scale")
    flat = LinearGlobal.from_config(_config(), has_exog=False).fit(_panel([120] * 5, "MS", seed=1), freq="MS")
    assert flat.transform_names_ in {("scale",), ("diff", "scale")}
    assert len(model.predict(4)) == 20


def test_explicit_transforms_skip_the_choice():
    model = LinearGlobal.from_config(_config(target_transforms=["scale"]), has_exog=False)
    model.fit(_panel([60] * 3, "MS"), freq="MS")
    assert model.transform_names_ == ("scale",)


def test_the_transforms_of_a_large_partition_are_chosen_on_an_even_sample_of_its_series():
    from forecasting.models import recursive

    panel = _panel([40] * (recursive.TRIAL_SERIES + 101), "MS", trend=2.0)
    sample = recursive._trial_series(panel)
    ids = np.sort(panel[SERIES].unique())
    kept = np.sort(sample[SERIES].unique())
    assert len(kept) == recursive.TRIAL_SERIES and kept[0] == ids[0] and kept[-1] == ids[-1]
    # every kept series keeps all its rows; the gaps between kept ids are even (spread, not the first 300)
    assert (sample.groupby(SERIES).size() == 40).all()
    positions = np.searchsorted(ids, kept)
    assert np.diff(positions).max() - np.diff(positions).min() <= 1
    small = _panel([40] * 5, "MS")
    assert recursive._trial_series(small) is small
    # the choice still sees the trend the whole partition has
    model = LinearGlobal.from_config(_config(), has_exog=False).fit(panel, freq="MS")
    assert model.transform_names_ == ("diff", "scale")
