"""Rolling-origin folds: expected boundaries as tables, leakage invariants for every fold, exact error messages."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from forecasting.backtesting.folds import MAX_AUTO_WINDOWS, Fold, auto_windows, make_folds, series_cutoffs, split_fold


def _panel(spans: dict[str, tuple[str, str]], freq: str) -> pd.DataFrame:
    """One row per grid point of each series' (first, last) span; y counts up so rows are distinguishable."""
    parts = [
        pd.DataFrame({"series": name, "ts": pd.date_range(first, last, freq=freq)})
        for name, (first, last) in spans.items()
    ]
    panel = pd.concat(parts, ignore_index=True).sort_values(["series", "ts"], ignore_index=True)
    return panel.assign(y=range(len(panel))).astype({"y": "float64"})


# a: full span; b: starts late; c: ends early
DAILY = _panel(
    {"a": ("2024-01-01", "2024-01-30"), "b": ("2024-01-21", "2024-01-30"), "c": ("2024-01-01", "2024-01-25")}, "D"
)
WEEKLY = _panel({"a": ("2023-11-19", "2024-03-31"), "b": ("2024-02-18", "2024-03-31")}, "W-SUN")
MONTHLY = _panel({"a": ("2023-01-01", "2024-06-01")}, "MS")
PANELS = {"daily": (DAILY, "D"), "weekly": (WEEKLY, "W-SUN"), "monthly": (MONTHLY, "MS")}

# (panel, horizon, n_windows, step) -> [(window, cutoff, test_start, test_end), ...] oldest first
CASES = [
    # daily, end 2024-01-30: adjacent windows (step defaults to horizon)
    ("daily", 3, 2, None, [(1, "2024-01-24", "2024-01-25", "2024-01-27"),
                           (0, "2024-01-27", "2024-01-28", "2024-01-30")]),
    # overlapping: step 1 < horizon 3
    ("daily", 3, 3, 1, [(2, "2024-01-25", "2024-01-26", "2024-01-28"),
                        (1, "2024-01-26", "2024-01-27", "2024-01-29"),
                        (0, "2024-01-27", "2024-01-28", "2024-01-30")]),
    # gaps: step 5 > horizon 2, days 01-21..01-23 and 01-26..01-28 are never scored
    ("daily", 2, 3, 5, [(2, "2024-01-18", "2024-01-19", "2024-01-20"),
                        (1, "2024-01-23", "2024-01-24", "2024-01-25"),
                        (0, "2024-01-28", "2024-01-29", "2024-01-30")]),
    ("daily", 1, 1, None, [(0, "2024-01-29", "2024-01-30", "2024-01-30")]),
    # weekly W-SUN, end 2024-03-31 (a Sunday)
    ("weekly", 4, 2, None, [(1, "2024-02-04", "2024-02-11", "2024-03-03"),
                            (0, "2024-03-03", "2024-03-10", "2024-03-31")]),
    ("weekly", 4, 3, 2, [(2, "2024-02-04", "2024-02-11", "2024-03-03"),
                         (1, "2024-02-18", "2024-02-25", "2024-03-17"),
                         (0, "2024-03-03", "2024-03-10", "2024-03-31")]),
    ("weekly", 2, 2, 3, [(1, "2024-02-25", "2024-03-03", "2024-03-10"),
                         (0, "2024-03-17", "2024-03-24", "2024-03-31")]),
    # monthly MS, end 2024-06-01: steps follow the calendar, not a fixed number of days
    ("monthly", 2, 2, None, [(1, "2024-02-01", "2024-03-01", "2024-04-01"),
                             (0, "2024-04-01", "2024-05-01", "2024-06-01")]),
]  # fmt: skip


def _case_id(case: tuple) -> str:
    name, horizon, n_windows, step, _ = case
    return f"{name}-h{horizon}-n{n_windows}-s{step}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_make_folds_boundaries(case):
    name, horizon, n_windows, step, expected = case
    panel, freq = PANELS[name]
    folds = make_folds(panel, freq=freq, horizon=horizon, n_windows=n_windows, step=step)
    got = [(f.window, str(f.cutoff.date()), str(f.test_start.date()), str(f.test_end.date())) for f in folds]
    assert got == expected
    assert all(f.freq == freq and f.horizon == horizon for f in folds)


def _check_fold(panel: pd.DataFrame, fold: Fold, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Everything that must hold for any fold of any panel: each series is cut at its own cutoff, as many grid
    steps before ``fold.cutoff`` as it ends before the panel."""
    offset = pd.tseries.frequencies.to_offset(fold.freq)
    end = panel["ts"].max()
    own_cutoff = {}
    for series, ts in panel.groupby("series")["ts"]:
        behind = len(pd.date_range(ts.max(), end, freq=fold.freq)) - 1
        own_cutoff[series] = fold.cutoff - behind * offset
    assert (train["ts"] <= train["series"].map(own_cutoff)).all()
    assert (test["cutoff"] == test["series"].map(own_cutoff)).all()
    assert (test["ts"] > test["cutoff"]).all()
    # ts is exactly `step` grid steps after the series' cutoff, and step stays within 1..horizon
    assert test["step"].between(1, fold.horizon).all()
    assert (test["ts"] == [c + s * offset for c, s in zip(test["cutoff"], test["step"], strict=True)]).all()
    # no row in both, and both are made of panel rows
    keys = ["series", "ts"]
    assert train.merge(test, on=keys).empty
    parts = pd.concat([train, test.drop(columns=["step", "cutoff"])])
    assert len(parts.merge(panel, on=[*keys, "y"])) == len(train) + len(test)
    # only series with history at their cutoff are split; test series are a subset of train series
    trained = {s for s, ts in panel.groupby("series")["ts"] if ts.min() <= own_cutoff[s]}
    assert set(train["series"]) == trained
    assert set(test["series"]) <= trained
    # every trained series gets every step once: its test window ends at or before its own end
    for series in sorted(trained):
        assert test.loc[test["series"] == series, "step"].tolist() == list(range(1, fold.horizon + 1))
    assert list(test.columns) == [*panel.columns, "step", "cutoff"]
    assert train.index.equals(pd.RangeIndex(len(train))) and test.index.equals(pd.RangeIndex(len(test)))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_split_fold_invariants(case):
    name, horizon, n_windows, step, _ = case
    panel, freq = PANELS[name]
    original = panel.copy()
    for fold in make_folds(panel, freq=freq, horizon=horizon, n_windows=n_windows, step=step):
        train, test = split_fold(panel, fold)
        _check_fold(panel, fold, train, test)
    pd.testing.assert_frame_equal(panel, original)


def test_split_fold_leaves_out_series_without_history():
    fold = Fold(0, pd.Timestamp("2024-01-20"), pd.Timestamp("2024-01-21"), pd.Timestamp("2024-01-23"), "D", 3)
    train, test = split_fold(DAILY, fold)
    # b starts on 2024-01-21, inside the test window: no history, so it is in neither part
    assert "b" not in set(train["series"]) | set(test["series"])
    assert test.groupby("series")["step"].apply(list).to_dict() == {"a": [1, 2, 3], "c": [1, 2, 3]}


def test_a_series_that_ends_early_is_scored_before_its_own_end():
    (fold,) = make_folds(DAILY, freq="D", horizon=3, n_windows=1)  # cutoff 2024-01-27; c ends 2024-01-25
    train, test = split_fold(DAILY, fold)
    c_test = test[test["series"] == "c"]
    assert train.loc[train["series"] == "c", "ts"].max() == pd.Timestamp("2024-01-22")
    assert c_test["ts"].dt.strftime("%m-%d").tolist() == ["01-23", "01-24", "01-25"]
    assert c_test["step"].tolist() == [1, 2, 3] and (c_test["cutoff"] == pd.Timestamp("2024-01-22")).all()
    assert series_cutoffs(DAILY, fold).to_dict() == {
        "a": pd.Timestamp("2024-01-27"), "b": pd.Timestamp("2024-01-27"), "c": pd.Timestamp("2024-01-22")}


def test_a_series_whose_own_cutoff_precedes_the_panel_is_left_out():
    panel = _panel({"a": ("2024-01-01", "2024-01-30"), "d": ("2024-01-01", "2024-01-04")}, "D")
    (fold,) = make_folds(panel, freq="D", horizon=3, n_windows=1)
    train, test = split_fold(panel, fold)
    # d ends 26 days early: its own cutoff 2024-01-01 leaves it one training point
    assert train.loc[train["series"] == "d", "ts"].tolist() == [pd.Timestamp("2024-01-01")]
    shifted = Fold(0, pd.Timestamp("2024-01-25"), pd.Timestamp("2024-01-26"), pd.Timestamp("2024-01-28"), "D", 3)
    train, test = split_fold(panel, shifted)
    assert "d" not in set(train["series"]) | set(test["series"])
    assert "d" not in series_cutoffs(panel, shifted)


def test_oldest_fold_may_keep_exactly_one_training_point():
    panel = _panel({"a": ("2024-01-01", "2024-01-05")}, "D")
    oldest = make_folds(panel, freq="D", horizon=2, n_windows=2)[0]  # needs 1 + 2 + 2 = 5 points
    train, _ = split_fold(panel, oldest)
    assert oldest.cutoff == pd.Timestamp("2024-01-01") and len(train) == 1


def test_split_fold_leaves_out_series_with_less_than_min_train_points():
    fold = Fold(0, pd.Timestamp("2024-01-24"), pd.Timestamp("2024-01-25"), pd.Timestamp("2024-01-27"), "D", 3)
    # at the cutoff b has 4 points (01-21..01-24), a 24 and c 24
    train, test = split_fold(DAILY, fold, min_train=5)
    assert set(train["series"]) == set(test["series"]) == {"a", "c"}
    train, test = split_fold(DAILY, fold, min_train=4)
    assert set(train["series"]) == set(test["series"]) == {"a", "b", "c"}


# (lengths, horizon, season, step, cap) -> windows: the median series keeps 2 * max(season, horizon) training
# points at the oldest cutoff
AUTO_CASES = [
    ([10, 10, 10], 4, 4, None, 3, 1),          # too short for even one window with the reserve: still 1
    ([1], 4, 4, None, 3, 1),
    ([], 4, 4, None, 3, 1),                    # an empty partition is never backtested, but must not fail
    ([16, 16], 4, 4, None, 3, 2),              # 16 - 8 = 8 points: two windows of 4
    ([15, 15], 4, 4, None, 3, 1),              # one point short of the second window
    ([200] * 5, 4, 4, None, 3, 3),             # long series: the cap
    ([200] * 5, 4, 4, None, 8, 8),
    ([200] * 5, 13, 52, None, 3, 3),           # weekly: two years kept, then as many horizons as fit
    ([120, 130, 140], 13, 52, None, 9, 2),     # 130 - 104 = 26 points: two windows of 13
    ([10, 20, 300, 300, 300], 4, 4, None, 3, 3),  # mixed: the median series decides, not the shortest
    ([10, 10, 10, 300, 300], 4, 4, None, 3, 1),
    ([30] * 3, 4, 4, 2, 10, 10),               # step 2: 30 - 8 - 4 = 18 more points, 1 + 9 windows
    ([30] * 3, 4, 1, None, 10, 5),             # the reserve is two horizons when the season is shorter
]


@pytest.mark.parametrize("lengths, horizon, season, step, cap, expected", AUTO_CASES)
def test_auto_windows(lengths, horizon, season, step, cap, expected):
    assert auto_windows(lengths, horizon=horizon, season=season, step=step, cap=cap) == expected


def test_auto_windows_always_leave_the_median_series_its_reserve():
    for median in range(1, 80):
        n = auto_windows([median], horizon=4, season=6, step=3, cap=MAX_AUTO_WINDOWS)
        assert 1 <= n <= MAX_AUTO_WINDOWS
        if n > 1:
            assert median - (4 + (n - 1) * 3) >= 12  # two seasons of 6 at the oldest cutoff


SHORT = _panel({"a": ("2024-01-01", "2024-01-05")}, "D")

ERRORS = [
    (dict(horizon=0, n_windows=1), "horizon must be an integer >= 1, got 0"),
    (dict(horizon=2, n_windows=0), "n_windows must be an integer >= 1, got 0"),
    (dict(horizon=2, n_windows=1, step=0), "step must be an integer >= 1, got 0"),
    (dict(horizon=1.5, n_windows=1), "horizon must be an integer >= 1, got 1.5"),
    (
        dict(horizon=3, n_windows=2),
        "not enough history for horizon=3, n_windows=2, step=3: the oldest window needs 7 timestamps on the 'D' "
        "grid up to 2024-01-05 (from 2023-12-30), the panel has 5 (from 2024-01-01); lower n_windows, step or horizon",
    ),
    (
        dict(horizon=5, n_windows=1),
        "not enough history for horizon=5, n_windows=1, step=5: the oldest window needs 6 timestamps on the 'D' "
        "grid up to 2024-01-05 (from 2023-12-31), the panel has 5 (from 2024-01-01); lower n_windows, step or horizon",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), ERRORS, ids=lambda v: str(v)[:40])
def test_make_folds_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_folds(SHORT, freq="D", **kwargs)


def test_make_folds_rejects_an_empty_panel():
    with pytest.raises(ValueError, match=re.escape("panel is empty; there is nothing to place folds on")):
        make_folds(SHORT.iloc[:0], freq="D", horizon=1, n_windows=1)


def test_make_folds_rejects_a_panel_off_the_grid():
    message = "the latest ts 2024-01-05 is not on the 'W-SUN' grid; is freq the panel's frequency?"
    with pytest.raises(ValueError, match=re.escape(message)):
        make_folds(_panel({"a": ("2023-12-03", "2024-01-05")}, "D"), freq="W-SUN", horizon=1, n_windows=1)


def test_split_fold_rejects_test_rows_off_the_grid():
    panel = pd.DataFrame(
        {
            "series": "a",
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02 12:00"], format="ISO8601"),
            "y": [1.0, 2.0, 3.0],
        }
    )
    fold = Fold(0, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03"), "D", 2)
    message = "test rows at ts not on the 'D' grid from cutoff 2024-01-01: ['2024-01-02 12:00:00']"
    with pytest.raises(ValueError, match=re.escape(message)):
        split_fold(panel, fold)
