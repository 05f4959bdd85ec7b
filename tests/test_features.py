"""forecasting.features.build: exact values, pandas parity, no reads of the future or of other series, tail
invariant."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.features.build import (
    ROLLING_STATS,
    TECHNICAL_FEATURES,
    FeatureSpec,
    build_features,
    feature_names,
    tail_for_prediction,
    tail_length,
)

NAN = np.nan


def make_panel(lengths: dict[str, int], *, freq: str = "D", start: str = "2024-01-01", seed: int = 0, level=0.0):
    """A seeded random-walk panel in the contract's shape; series start on different dates."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, (name, n) in enumerate(lengths.items()):
        ts = pd.date_range(pd.Timestamp(start) + i * pd.tseries.frequencies.to_offset(freq), periods=n, freq=freq)
        y = level + rng.normal(0, 1, n).cumsum()
        frames.append(pd.DataFrame({"series": name, "ts": ts.astype("datetime64[ns]"), "y": y}))
    return pd.concat(frames, ignore_index=True)


def append_future(panel: pd.DataFrame, freq: str) -> pd.DataFrame:
    """One row per series at the next ts with y = NaN, as recursive prediction appends it."""
    last = panel.groupby("series", sort=False).tail(1)
    future = last.assign(ts=last["ts"] + pd.tseries.frequencies.to_offset(freq), y=NAN)
    return pd.concat([panel, future]).sort_values(["series", "ts"], kind="stable").reset_index(drop=True)


# --- exact values -----------------------------------------------------------------------------------------

TWO_SERIES = pd.DataFrame(
    {
        "series": ["a"] * 5 + ["b"] * 3,
        "ts": np.concatenate([pd.date_range("2024-01-01", periods=n).astype("datetime64[ns]") for n in (5, 3)]),
        "y": [1.0, 2.0, 4.0, 7.0, 11.0, 100.0, 90.0, 80.0],
    }
)

EXPECTED_TWO_SERIES = {  # series a then b; b's first rows would show a's values if anything leaked
    "lag_1": [NAN, 1, 2, 4, 7, NAN, 100, 90],
    "lag_2": [NAN, NAN, 1, 2, 4, NAN, NAN, 100],
    "rolling_mean_2": [NAN, NAN, 1.5, 3, 5.5, NAN, NAN, 95],
    "rolling_std_2": [NAN, NAN, np.sqrt(0.5), np.sqrt(2), np.sqrt(4.5), NAN, NAN, np.sqrt(50)],
    "rolling_min_2": [NAN, NAN, 1, 2, 4, NAN, NAN, 90],
    "rolling_max_2": [NAN, NAN, 2, 4, 7, NAN, NAN, 100],
    "rolling_mean_3": [NAN, NAN, NAN, 7 / 3, 13 / 3, NAN, NAN, NAN],
    "rolling_std_3": [NAN, NAN, NAN, np.sqrt(7 / 3), np.sqrt(19 / 3), NAN, NAN, NAN],
    "rolling_min_3": [NAN, NAN, NAN, 1, 2, NAN, NAN, NAN],
    "rolling_max_3": [NAN, NAN, NAN, 4, 7, NAN, NAN, NAN],
}


def test_lags_and_rolling_stats_exact_on_two_series():
    spec = FeatureSpec(lags=(1, 2), rolling_windows=(2, 3), calendar=False)
    out = build_features(TWO_SERIES, spec, freq="D")
    assert list(out.columns) == list(EXPECTED_TWO_SERIES)
    for name, expected in EXPECTED_TWO_SERIES.items():
        if "std" in name:
            np.testing.assert_allclose(out[name].to_numpy(), expected, rtol=1e-14, err_msg=name)
        else:
            np.testing.assert_array_equal(out[name].to_numpy(), expected, err_msg=name)


def test_output_keeps_index_and_is_float64_in_feature_names_order():
    panel = TWO_SERIES.set_index(pd.RangeIndex(10, 18))
    spec = FeatureSpec(lags=(2,), rolling_windows=(3,), rolling_stats=("max", "mean"), technical=True)
    out = build_features(panel, spec, freq="D")
    assert out.index.equals(panel.index)
    assert list(out.columns) == feature_names(spec, freq="D")
    assert list(out.columns) == ["lag_2", "rolling_max_3", "rolling_mean_3", *TECHNICAL_FEATURES,
                                 "cal_dayofweek", "cal_dayofmonth", "cal_month", "cal_weekofyear"]  # fmt: skip
    assert (out.dtypes == np.float64).all()


def test_constant_windows_have_exactly_zero_std():
    panel = make_panel({"a": 12}, level=1e6)
    panel.loc[3:9, "y"] = 1234567.891
    out = build_features(panel, FeatureSpec(lags=(), rolling_windows=(4,), calendar=False), freq="D")
    assert (out["rolling_std_4"].iloc[7:11] == 0.0).all()


def test_empty_panel_gives_empty_frame_with_columns():
    spec = FeatureSpec(lags=(1,), rolling_windows=(2,))
    out = build_features(TWO_SERIES.iloc[:0], spec, freq="D")
    assert out.empty and list(out.columns) == feature_names(spec, freq="D")


# --- parity with pandas -----------------------------------------------------------------------------------


def pandas_reference(panel: pd.DataFrame, spec: FeatureSpec) -> dict[str, pd.Series]:
    groups = panel.groupby("series", sort=False)["y"]
    expected = {f"lag_{k}": groups.shift(k) for k in spec.lags}
    previous = groups.shift(1)
    for w in spec.rolling_windows:
        rolling = previous.groupby(panel["series"], sort=False).rolling(w)
        for stat in spec.rolling_stats:
            expected[f"rolling_{stat}_{w}"] = getattr(rolling, stat)().reset_index(level=0, drop=True)
    return expected


def exact_rolling_std(y: np.ndarray, w: int) -> np.ndarray:
    """Two-pass sample std of y[t-w..t-1] for one series, the textbook-accurate way."""
    out = np.full(len(y), NAN)
    if len(y) > w:
        windows = np.lib.stride_tricks.sliding_window_view(y, w)[:-1]
        out[w:] = np.sqrt(((windows - windows.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / (w - 1))
    return out


@pytest.mark.parametrize(("level", "nan_share"), [(0.0, 0.0), (1e6, 0.0), (0.0, 0.08)], ids=str)
def test_lags_and_rolling_match_pandas_groupby(level, nan_share):
    panel = make_panel({"a": 1, "b": 3, "c": 9, "d": 31, "e": 64}, level=level, seed=1)
    panel.loc[np.random.default_rng(2).random(len(panel)) < nan_share, "y"] = NAN
    spec = FeatureSpec(lags=(1, 2, 3, 7), rolling_windows=(2, 3, 5, 8), calendar=False)
    out = build_features(panel, spec, freq="D")
    for name, expected in pandas_reference(panel, spec).items():
        # pandas' online variance drifts to ~4e-7 relative at level 1e6; the exact check below is tighter
        rtol = 1e-6 if "std" in name and level else 1e-10
        np.testing.assert_allclose(out[name].to_numpy(), expected.to_numpy(), rtol=rtol, err_msg=name)
    for w in spec.rolling_windows:
        exact = panel.groupby("series")["y"].transform(lambda s, w=w: exact_rolling_std(s.to_numpy(), w))
        np.testing.assert_allclose(out[f"rolling_std_{w}"], exact, rtol=1e-9, err_msg=str(w))


@pytest.mark.parametrize("shape", ["level_1e6", "exponential_trend"])
def test_rolling_std_keeps_precision_on_large_levels(shape):
    n = 3000
    rng = np.random.default_rng(3)
    y = 1e6 + rng.normal(0, 0.01, n) if shape == "level_1e6" else np.exp(np.linspace(0, 14, n)) + rng.random(n)
    panel = pd.DataFrame({"series": "a", "ts": pd.date_range("2020-01-01", periods=n, freq="h"), "y": y})
    out = build_features(panel, FeatureSpec(lags=(), rolling_windows=(7, 30), calendar=False), freq="h")
    for w in (7, 30):
        np.testing.assert_allclose(out[f"rolling_std_{w}"], exact_rolling_std(y, w), rtol=1e-9, err_msg=str(w))


def test_technical_indicators_match_pandas_definitions():
    panel = make_panel({"a": 10, "b": 40, "c": 150}, level=50.0, seed=4)
    spec = FeatureSpec(lags=(), technical=True, calendar=False)
    out = build_features(panel, spec, freq="D")

    def per_series(values: pd.Series, fn) -> pd.Series:
        return values.groupby(panel["series"], sort=False).transform(fn)

    def ewm(values: pd.Series, **kw) -> pd.Series:
        return per_series(values, lambda s: s.ewm(adjust=False, **kw).mean())

    change = per_series(panel["y"], lambda s: s.diff())
    gain, loss = ewm(change.clip(lower=0), alpha=1 / 14), ewm((-change).clip(lower=0), alpha=1 / 14)
    macd = ewm(panel["y"], span=12) - ewm(panel["y"], span=26)
    sma = {w: per_series(panel["y"], lambda s, w=w: s.rolling(w).mean()) for w in (5, 20)}
    expected = {
        "tech_sma_ratio_5_20": (sma[5] / sma[20], 20),
        "tech_rsi_14": (100 * gain / (gain + loss), 15),
        "tech_macd": (macd, 26),
        "tech_macd_signal": (ewm(macd, span=9), 34),
    }
    pos = panel.groupby("series").cumcount().to_numpy()
    for name, (values, history) in expected.items():
        lagged = per_series(values, lambda s: s.shift(1)).to_numpy(copy=True)
        lagged[pos < history] = NAN
        np.testing.assert_allclose(out[name].to_numpy(), lagged, rtol=1e-10, err_msg=name)
    assert out.loc[pos >= 34].notna().all().all()


def test_rsi_of_a_flat_history_is_50():
    panel = pd.DataFrame({"series": "a", "ts": pd.date_range("2024-01-01", periods=20), "y": 3.0})
    out = build_features(panel, FeatureSpec(lags=(), technical=True, calendar=False), freq="D")
    assert (out["tech_rsi_14"].iloc[15:] == 50.0).all()


# --- no feature reads the future or another series ----------------------------------------------------------


@st.composite
def specs(draw) -> FeatureSpec:
    return FeatureSpec(
        lags=tuple(draw(st.lists(st.integers(1, 6), unique=True, max_size=3))),
        rolling_windows=tuple(draw(st.lists(st.integers(2, 7), unique=True, max_size=2))),
        rolling_stats=tuple(draw(st.lists(st.sampled_from(ROLLING_STATS), min_size=1, unique=True))),
        exog_lags=tuple(draw(st.lists(st.integers(1, 3), unique=True, max_size=2))),
        technical=draw(st.booleans()),
    )


def exog_for(panel: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame | None:
    if not spec.exog_lags:
        return None
    frames = []
    for name, freq in (("daily", "D"), ("weekly", "W-SUN")):  # daily: one value at every target ts
        ts = pd.date_range(panel["ts"].min() - pd.Timedelta(days=3), panel["ts"].max(), freq=freq)
        frames.append(pd.DataFrame({"series": name, "ts": ts, "y": np.arange(len(ts), dtype=float)}))
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 45), min_size=1, max_size=3),
    spec=specs(),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_no_feature_reads_the_future_or_another_series(lengths, spec, seed, data):
    panel = make_panel({f"s{i}": n for i, n in enumerate(lengths)}, seed=seed)
    exog = exog_for(panel, spec)
    before = build_features(panel, spec, freq="D", exog=exog)
    assert list(before.columns) == feature_names(spec, freq="D", exog_names=() if exog is None else ("daily", "weekly"))

    target = data.draw(st.sampled_from(sorted(panel["series"].unique())), label="series")
    rows = np.flatnonzero(panel["series"] == target)
    t = data.draw(st.integers(0, len(rows) - 1), label="t")
    changed = panel.copy()
    new = NAN if data.draw(st.booleans(), label="nan") else np.random.default_rng(seed + 1).normal(0, 50, 1)[0]
    changed.loc[rows[t:], "y"] = new * np.arange(1, len(rows) - t + 1)
    after = build_features(changed, spec, freq="D", exog=exog)

    unchanged = np.ones(len(panel), dtype=bool)
    unchanged[rows[t + 1 :]] = False  # row t itself must not move: its features read y strictly before t
    np.testing.assert_array_equal(after.to_numpy()[unchanged], before.to_numpy()[unchanged])

    alone = build_features(panel.iloc[rows].reset_index(drop=True), spec, freq="D", exog=exog)
    np.testing.assert_array_equal(alone.to_numpy(), before.to_numpy()[rows])

    if exog is not None:  # exog lags >= 1: rows at or before a cutoff never see exog values from it on
        cutoff = panel["ts"].iloc[rows[t]]
        later_exog = exog.assign(y=exog["y"].where(exog["ts"] < cutoff, 1e3))
        moved = build_features(panel, spec, freq="D", exog=later_exog)
        early = (panel["ts"] <= cutoff).to_numpy()
        np.testing.assert_array_equal(moved.to_numpy()[early], before.to_numpy()[early])


# --- tail invariant -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(lags=(1, 7, 12), rolling_windows=(3, 10), exog_lags=(1, 4)),
        FeatureSpec(lags=(1, 2), rolling_windows=(28,), rolling_stats=("std", "min"), exog_lags=(2,), technical=True),
    ],
    ids=["lags_rolling_exog", "technical"],
)
def test_tail_plus_future_row_matches_full_history(spec):
    panel = make_panel({"a_short": 5, "b_mid": 40, "c_long": 900, "d_longer": 1500}, freq="W-SUN", seed=5, level=200.0)
    exog = make_panel({"rate": 120}, freq="QS-JAN", start="2000-01-01", seed=6)
    tail = tail_for_prediction(panel, spec)
    expected_sizes = panel.groupby("series").size().clip(upper=tail_length(spec))
    pd.testing.assert_series_equal(tail.groupby("series").size(), expected_sizes)
    assert tail.index.equals(pd.RangeIndex(len(tail)))

    def future_row(history: pd.DataFrame) -> pd.DataFrame:
        extended = append_future(history, "W-SUN")
        features = build_features(extended, spec, freq="W-SUN", exog=exog)
        return features.groupby(extended["series"]).tail(1).reset_index(drop=True)

    full, short = future_row(panel), future_row(tail)
    exact = [c for c in full.columns if c not in TECHNICAL_FEATURES]
    np.testing.assert_array_equal(short[exact].to_numpy(), full[exact].to_numpy())  # bit for bit
    if spec.technical:  # EWMs: the tail's start weighs < 1e-10 of the series' range (about 30 here)
        technical = list(TECHNICAL_FEATURES)
        np.testing.assert_allclose(short[technical].to_numpy(), full[technical].to_numpy(), rtol=0, atol=1e-7)
        assert full[technical].iloc[2:].notna().all().all()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (FeatureSpec(lags=()), 1),
        (FeatureSpec(lags=(1, 12)), 12),
        (FeatureSpec(lags=(1, 12), rolling_windows=(3, 7)), 13),
        (FeatureSpec(lags=(1,), exog_lags=(30,)), 30),
        (FeatureSpec(lags=(1,), technical=True), 313),
    ],
)
def test_tail_length_rule(spec, expected):
    assert tail_length(spec) == expected


# --- exogenous series ---------------------------------------------------------------------------------------


def test_quarterly_exog_on_weekly_target_is_aligned_as_of_and_lagged():
    def weekly(name: str, start: str, n: int) -> pd.DataFrame:
        ts = pd.date_range(start, periods=n, freq="W-SUN").astype("datetime64[ns]")
        return pd.DataFrame({"series": name, "ts": ts, "y": np.arange(n, dtype=float)})

    panel = pd.concat([weekly("a", "2024-03-17", 8), weekly("b", "2023-12-24", 4)], ignore_index=True)
    exog = pd.DataFrame(
        {
            "series": ["unemp", "unemp", "unemp", "rate"],
            "ts": pd.to_datetime(["2023-10-01", "2024-01-01", "2024-04-01", "2024-04-01"]).astype("datetime64[s]"),
            "y": [4.0, 5.0, 6.0, 1.5],
        }
    ).sort_values(["series", "ts"], ignore_index=True)
    spec = FeatureSpec(lags=(), exog_lags=(1, 2), calendar=False)
    out = build_features(panel, spec, freq="W-SUN", exog=exog)
    # a: 03-17 03-24 03-31 | 04-07 (first week after the April value) ... 05-05, carried forward past its end
    # b: 12-24 12-31 | 01-07 01-14
    expected = {
        "exog_rate_lag_1": [NAN, NAN, NAN, NAN, 1.5, 1.5, 1.5, 1.5] + [NAN] * 4,
        "exog_rate_lag_2": [NAN, NAN, NAN, NAN, NAN, 1.5, 1.5, 1.5] + [NAN] * 4,
        "exog_unemp_lag_1": [NAN, 5, 5, 5, 6, 6, 6, 6] + [NAN, 4, 4, 5],
        "exog_unemp_lag_2": [NAN, NAN, 5, 5, 5, 6, 6, 6] + [NAN, NAN, 4, 4],
    }
    assert list(out.columns) == list(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(out[name].to_numpy(), values, err_msg=name)

    unemp = exog[exog["series"] == "unemp"].drop(columns="series").rename(columns={"y": "x"})
    targets = panel.reset_index().sort_values("ts")
    aligned = pd.merge_asof(targets, unemp.astype({"ts": panel["ts"].dtype}), on="ts", direction="backward")
    aligned = aligned.set_index("index").sort_index()
    for k in (1, 2):
        shifted = aligned.groupby("series")["x"].shift(k).to_numpy()
        np.testing.assert_array_equal(out[f"exog_unemp_lag_{k}"].to_numpy(), shifted)


def test_exog_errors_are_precise():
    exog = pd.DataFrame({"series": "x", "ts": pd.to_datetime(["2024-01-02", "2024-01-01"]), "y": [1.0, 2.0]})
    message = "exog was given but spec.exog_lags is empty; set exog_lags, e.g. (1,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        build_features(TWO_SERIES, FeatureSpec(lags=(1,)), freq="D", exog=exog)
    with pytest.raises(ValueError, match=re.escape("exog series 'x' must have strictly increasing ts")):
        build_features(TWO_SERIES, FeatureSpec(lags=(1,), exog_lags=(1,)), freq="D", exog=exog)
    with pytest.raises(ValueError, match=re.escape("exog lacks column(s) ['y']")):
        build_features(TWO_SERIES, FeatureSpec(lags=(1,), exog_lags=(1,)), freq="D", exog=exog.drop(columns="y"))


# --- calendar -----------------------------------------------------------------------------------------------

CALENDAR_CASES = [  # (freq, first ts, expected columns over the first three rows)
    ("D", "2024-12-30", {"dayofweek": [0, 1, 2], "dayofmonth": [30, 31, 1], "month": [12, 12, 1],
                         "weekofyear": [1, 1, 1]}),
    ("B", "2024-12-27", {"dayofweek": [4, 0, 1], "dayofmonth": [27, 30, 31], "month": [12, 12, 12],
                         "weekofyear": [52, 1, 1]}),
    ("W-SUN", "2024-12-22", {"weekofyear": [51, 52, 1], "month": [12, 12, 1]}),
    ("2W", "2024-12-15", {"weekofyear": [50, 52, 2], "month": [12, 12, 1]}),
    ("MS", "2024-11-01", {"month": [11, 12, 1], "quarter": [4, 4, 1]}),
    ("ME", "2024-11-30", {"month": [11, 12, 1], "quarter": [4, 4, 1]}),
    ("QS-JAN", "2024-07-01", {"quarter": [3, 4, 1]}),
    ("YS-JAN", "2023-01-01", {}),
    ("h", "2024-12-31 22:00", {"hour": [22, 23, 0], "dayofweek": [1, 1, 2]}),
    ("15min", "2024-12-31 23:30", {"hour": [23, 23, 0], "dayofweek": [1, 1, 2]}),
    (None, "2024-01-01", {}),
]  # fmt: skip


@pytest.mark.parametrize(("freq", "start", "expected"), CALENDAR_CASES, ids=[str(c[0]) for c in CALENDAR_CASES])
def test_calendar_features_follow_the_frequency(freq, start, expected):
    ts = pd.date_range(start, periods=3, freq=freq or "D").astype("datetime64[ns]")
    panel = pd.DataFrame({"series": "a", "ts": ts, "y": [1.0, 2.0, 3.0]})
    out = build_features(panel, FeatureSpec(lags=()), freq=freq)
    assert list(out.columns) == [f"cal_{field}" for field in expected]
    for field, values in expected.items():
        np.testing.assert_array_equal(out[f"cal_{field}"].to_numpy(), values, err_msg=field)


def test_calendar_for_an_unknown_frequency_is_an_error_unless_disabled():
    panel = pd.DataFrame({"series": "a", "ts": pd.date_range("2024-01-01", periods=3, freq="WOM-1MON"), "y": 1.0})
    message = "'WOM-1MON' is not a pandas frequency alias: s, min"
    with pytest.raises(ValueError, match=re.escape(message)):
        build_features(panel, FeatureSpec(lags=(1,)), freq="WOM-1MON")
    assert list(build_features(panel, FeatureSpec(lags=(1,), calendar=False), freq="WOM-1MON").columns) == ["lag_1"]


# --- validation and inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lags": (0, 3)}, "lags must be positive integers, got [0, 3]"),
        ({"lags": (1.5,)}, "lags must be positive integers, got [1.5]"),
        ({"lags": (True,)}, "lags must be positive integers, got [True]"),
        ({"lags": (1, 1)}, "lags must not repeat a value, got [1, 1]"),
        ({"lags": (1,), "rolling_windows": (1, 4)}, "rolling_windows must be integers >= 2, got [1, 4]"),
        (
            {"lags": (1,), "rolling_stats": ("mean", "median", "sum")},
            "unknown rolling stat(s) ['median', 'sum']; choose from ['mean', 'std', 'min', 'max']",
        ),
        ({"lags": (1,), "rolling_stats": ("min", "min")}, "rolling_stats must not repeat a value, got ['min', 'min']"),
        (
            {"lags": (1,), "rolling_windows": (3,), "rolling_stats": ()},
            "rolling_stats must not be empty when rolling_windows are given",
        ),
        ({"lags": (1,), "exog_lags": (0,)}, "exog_lags must be positive integers, got [0]"),
        ({"lags": (1,), "calendar": "yes"}, "calendar must be True or False, got 'yes'"),
        ({"lags": (1,), "technical": 1}, "technical must be True or False, got 1"),
    ],
)
def test_feature_spec_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FeatureSpec(**kwargs)


def test_feature_spec_normalises_sequences_to_tuples():
    spec = FeatureSpec(lags=[1, np.int64(2)], rolling_windows=[3], rolling_stats="mean")
    assert (spec.lags, spec.rolling_windows, spec.rolling_stats) == ((1, 2), (3,), ("mean",))
    assert hash(spec) == hash(FeatureSpec(lags=(1, 2), rolling_windows=(3,), rolling_stats=("mean",)))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([0, 1, 5, 2], "panel must be sorted by (series, ts); series 'a' comes after 'b'"),
        ([0, 2, 1, 5], "panel must be sorted by (series, ts); ts does not increase at row 2 ('a')"),
    ],
)
def test_unsorted_panel_is_rejected(rows, message):
    panel = TWO_SERIES.iloc[rows].reset_index(drop=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        build_features(panel, FeatureSpec(lags=(1,)), freq="D")


def test_build_features_does_not_mutate_inputs():
    panel = make_panel({"a": 30, "b": 50}, seed=7)
    panel.loc[[3, 40], "y"] = NAN
    exog = make_panel({"x": 10}, freq="W-SUN", start="2023-12-01", seed=8)
    spec = FeatureSpec(lags=(1, 3), rolling_windows=(4,), exog_lags=(1,), technical=True)
    panel_before, exog_before = panel.copy(deep=True), exog.copy(deep=True)
    build_features(panel, spec, freq="D", exog=exog)
    tail_for_prediction(panel, spec)
    pd.testing.assert_frame_equal(panel, panel_before, check_exact=True)
    pd.testing.assert_frame_equal(exog, exog_before, check_exact=True)
