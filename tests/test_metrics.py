"""Metrics against hand-computed cases, M4's published Weekly figures, and a naive loop for the frame scorer."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting.m4 import M4_HORIZON, M4_SEASON, read_m4
from forecasting.backtesting.metrics import (
    aggregate_scores,
    bias,
    coverage,
    interval_width,
    mae,
    mape,
    mase,
    mase_scale,
    metric_columns,
    owa,
    rmse,
    score_forecasts,
    smape,
)

M4_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "m4"

Y_ = [10.0, 20.0, 30.0, 40.0]
F_ = [12.0, 18.0, 33.0, 40.0]  # errors f - y: +2, -2, +3, 0


# --- array metrics, hand-computed ------------------------------------------------------------------------------


def test_mae():
    # (2 + 2 + 3 + 0) / 4 = 1.75
    assert mae(Y_, F_) == pytest.approx(1.75)


def test_rmse():
    # sqrt((4 + 4 + 9 + 0) / 4) = sqrt(4.25)
    assert rmse(Y_, F_) == pytest.approx(math.sqrt(4.25))


def test_mape():
    # 100 * (2/10 + 2/20 + 3/30 + 0/40) / 4 = 100 * 0.4 / 4 = 10
    assert mape(Y_, F_) == pytest.approx(10.0)


def test_mape_excludes_zero_actuals():
    # the y = 0 row is dropped: 100 * (1/4 + 2/8) / 2 = 25
    assert mape([0.0, 4.0, 8.0], [5.0, 5.0, 6.0]) == pytest.approx(25.0)


def test_mape_is_nan_when_every_actual_is_zero():
    assert math.isnan(mape([0.0, 0.0], [1.0, 2.0]))


def test_smape():
    # 200 * (2/22 + 2/38 + 3/63 + 0/80) / 4
    expected = 200 * (2 / 22 + 2 / 38 + 3 / 63) / 4
    assert smape(Y_, F_) == pytest.approx(expected)


def test_smape_counts_zero_over_zero_as_zero():
    # terms: 0/0 -> 0, 200 * 1/1 = 200 (y = 0, f = 1), 200 * 1/3 (y = 1, f = 2) -> mean (0 + 200 + 66.67) / 3
    assert smape([0.0, 0.0, 1.0], [0.0, 1.0, 2.0]) == pytest.approx((200 + 200 / 3) / 3)
    assert smape([0.0], [0.0]) == 0.0


def test_smape_is_bounded_and_symmetric():
    rng = np.random.default_rng(0)
    y, f = rng.normal(size=50), rng.normal(size=50)
    assert 0 <= smape(y, f) <= 200
    assert smape(y, f) == pytest.approx(smape(f, y))


def test_bias():
    # (2 - 2 + 3 + 0) / 4 = 0.75: forecasts run high
    assert bias(Y_, F_) == pytest.approx(0.75)


def test_coverage_counts_closed_interval():
    # 1 inside, 2 on the lower bound, 3 on the upper bound, 4 outside -> 3 / 4
    assert coverage([1.5, 2.0, 3.0, 4.0], [1.0, 2.0, 1.0, 1.0], [2.0, 3.0, 3.0, 3.0]) == pytest.approx(0.75)


def test_interval_width():
    # (1 + 1 + 2 + 2) / 4 = 1.5
    assert interval_width([1.0, 2.0, 1.0, 1.0], [2.0, 3.0, 3.0, 3.0]) == pytest.approx(1.5)


def test_metrics_ignore_nan_positions():
    y = [10.0, np.nan, 30.0, 40.0]
    f = [12.0, 18.0, 33.0, np.nan]
    # only positions 0 and 2 remain: errors +2, +3
    assert mae(y, f) == pytest.approx(2.5)
    assert bias(y, f) == pytest.approx(2.5)
    assert math.isnan(mae([np.nan], [1.0]))


def test_metrics_reject_different_lengths():
    with pytest.raises(ValueError, match=re.escape("inputs differ in length: [2, 3]")):
        mae([1.0, 2.0], [1.0, 2.0, 3.0])


# --- MASE denominator --------------------------------------------------------------------------------------------


def test_mase_uses_seasonal_differences():
    insample = [1.0, 2.0, 4.0, 3.0, 7.0]
    # season 2: |4-1|, |3-2|, |7-4| -> mean 7/3; MAE of the forecasts = (1 + 3) / 2 = 2 -> 2 / (7/3) = 6/7
    assert mase([5.0, 6.0], [6.0, 3.0], insample=insample, season=2) == pytest.approx(6 / 7)
    # season 1: |1|, |2|, |1|, |4| -> mean 2 -> 2 / 2 = 1
    assert mase([5.0, 6.0], [6.0, 3.0], insample=insample, season=1) == pytest.approx(1.0)


def test_mase_falls_back_to_lag_one_for_short_series():
    # 4 values < season 12 + 1: lag 1 gives |2|, |2|, |4| -> mean 8/3; MAE 2 -> 2 / (8/3) = 0.75
    assert mase([10.0], [12.0], insample=[1.0, 3.0, 5.0, 9.0], season=12) == pytest.approx(0.75)


def test_mase_is_nan_without_a_usable_denominator():
    assert math.isnan(mase([1.0], [2.0], insample=[5.0, 5.0, 5.0], season=1))  # constant: denominator 0
    assert math.isnan(mase([1.0], [2.0], insample=[5.0], season=1))  # one value: no difference at all


def test_mase_rejects_season_below_one():
    with pytest.raises(ValueError, match=re.escape("season must be >= 1, got 0")):
        mase([1.0], [2.0], insample=[1.0, 2.0], season=0)


def test_mase_scale_matches_array_rule_per_series():
    panel = pd.DataFrame(
        {
            "series": ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"],
            "ts": list(pd.date_range("2024-01-01", periods=5))
            + list(pd.date_range("2024-01-01", periods=4))
            + list(pd.date_range("2024-01-01", periods=3))
            + [pd.Timestamp("2024-01-01")],
            "y": [1.0, 2.0, 4.0, 3.0, 7.0, 1.0, 3.0, 5.0, 9.0, 5.0, 5.0, 5.0, 1.0],
        }
    )
    scale = mase_scale(panel.iloc[::-1], season=2)  # input order must not matter
    # a: lag 2 -> (3 + 1 + 3) / 3; b: lag 2 -> (4 + 6) / 2; c: constant -> NaN; d: one value -> NaN
    assert scale.name == "mase_scale"
    assert scale["a"] == pytest.approx(7 / 3)
    assert scale["b"] == pytest.approx(5.0)
    assert math.isnan(scale["c"]) and math.isnan(scale["d"])
    # season 4: a has 5 >= 5 values -> lag 4: |7 - 1| = 6; b has 4 < 5 values -> lag 1: (2 + 2 + 4) / 3
    scale4 = mase_scale(panel, season=4)
    assert scale4["a"] == pytest.approx(6.0)
    assert scale4["b"] == pytest.approx(8 / 3)


# --- OWA ---------------------------------------------------------------------------------------------------------


def test_owa_of_naive2_is_one():
    assert owa(9.161, 2.777, smape_naive2=9.161, mase_naive2=2.777) == 1.0


def test_owa_reproduces_published_weekly_theta():
    # 0.5 * (9.093 / 9.161 + 2.637 / 2.777) = 0.5 * (0.99258 + 0.94959) = 0.97108
    assert round(owa(9.093, 2.637, smape_naive2=9.161, mase_naive2=2.777), 3) == 0.971


def test_owa_rejects_non_positive_naive2():
    with pytest.raises(ValueError, match=re.escape("Naive2 scores must be positive, got smape_naive2=0.0")):
        owa(1.0, 1.0, smape_naive2=0.0, mase_naive2=1.0)


# --- score_forecasts / aggregate_scores ----------------------------------------------------------------------------


def _small_forecasts() -> pd.DataFrame:
    # np.random.default_rng(7): 2 windows x 2 models x 3 series x 3 steps, with a zero actual and a NaN forecast
    rng = np.random.default_rng(7)
    keys = pd.MultiIndex.from_product(
        [[0, 1], ["naive", "theta"], ["a", "b", "c"], [1, 2, 3]], names=["window", "model", "series", "step"]
    )
    frame = keys.to_frame(index=False)
    frame["y"] = rng.normal(10, 3, len(frame)).round(2)
    frame["yhat"] = frame["y"] + rng.normal(0, 2, len(frame)).round(2)
    frame["lo_80"] = frame["yhat"] - 2.0
    frame["hi_80"] = frame["yhat"] + rng.uniform(0, 4, len(frame)).round(2)
    frame.loc[3, "y"] = 0.0
    frame.loc[5, "yhat"] = np.nan
    return frame


SCALE = pd.Series({"a": 2.0, "b": 0.5, "c": np.nan})


def test_score_forecasts_equals_a_naive_loop():
    forecasts = _small_forecasts()
    original = forecasts.copy()
    scores = score_forecasts(forecasts, insample_scale=SCALE, levels=(80,))
    pd.testing.assert_frame_equal(forecasts, original)  # input untouched
    assert list(scores.columns) == [
        "window", "model", "series", "step", "mae", "rmse", "mape", "smape", "mase", "bias", "coverage_80", "width_80",
    ]  # fmt: skip
    assert len(scores) == len(forecasts)
    assert metric_columns(scores) == list(scores.columns[4:])

    expected = []
    for (window, model, series, step), g in forecasts.groupby(["window", "model", "series", "step"]):
        y, f = g["y"].to_numpy(), g["yhat"].to_numpy()
        expected.append(
            {
                "window": window, "model": model, "series": series, "step": step,
                "mae": mae(y, f), "rmse": rmse(y, f), "mape": mape(y, f), "smape": smape(y, f),
                "mase": mae(y, f) / SCALE[series], "bias": bias(y, f),
                "coverage_80": coverage(y, g["lo_80"], g["hi_80"]), "width_80": interval_width(g["lo_80"], g["hi_80"]),
            }
        )  # fmt: skip
    pd.testing.assert_frame_equal(scores, pd.DataFrame(expected), check_dtype=False)
    assert scores["mape"].isna().sum() == 2  # the zero actual and the NaN forecast
    assert scores.loc[scores["series"] == "c", "mase"].isna().all()


def test_score_forecasts_pools_rows_sharing_a_key():
    # without the window column the two windows of each (model, series, step) are pooled
    forecasts = _small_forecasts().drop(columns=["window", "lo_80", "hi_80"])
    scores = score_forecasts(forecasts, insample_scale=SCALE)
    assert len(scores) == 2 * 3 * 3
    first = forecasts[(forecasts["model"] == "naive") & (forecasts["series"] == "a") & (forecasts["step"] == 1)]
    row = scores.iloc[0]
    assert row["rmse"] == pytest.approx(rmse(first["y"], first["yhat"]))
    assert row["mase"] == pytest.approx(mae(first["y"], first["yhat"]) / 2.0)


def test_score_forecasts_error_messages():
    forecasts = _small_forecasts()
    with pytest.raises(ValueError, match=re.escape("forecasts lack column(s) ['lo_95', 'hi_95']")):
        score_forecasts(forecasts, insample_scale=SCALE, levels=(95,))
    with pytest.raises(ValueError, match=re.escape("insample_scale lacks 1 series, e.g. ['c']")):
        score_forecasts(forecasts, insample_scale=SCALE.drop("c"))


def test_aggregate_scores_takes_means_of_per_series_values():
    forecasts = _small_forecasts()
    scores = score_forecasts(forecasts, insample_scale=SCALE, levels=(80,))
    agg = aggregate_scores(scores)
    assert list(agg.columns) == [
        "model", "mae", "rmse", "mape", "smape", "mase", "bias", "coverage_80", "width_80",
    ]  # fmt: skip
    for model, g in forecasts.groupby("model"):
        per_series = g.groupby("series")
        row = agg.set_index("model").loc[model]
        # one (window, step) observation per score row, so per-series values are the array metrics over 6 rows
        assert row["smape"] == pytest.approx(np.mean([smape(s["y"], s["yhat"]) for _, s in per_series]))
        assert row["rmse"] == pytest.approx(np.mean([rmse(s["y"], s["yhat"]) for _, s in per_series]))
        assert row["mase"] == pytest.approx(np.nanmean([mae(s["y"], s["yhat"]) / SCALE[k] for k, s in per_series]))

    by_step = aggregate_scores(scores, by=("model", "step"))
    assert list(by_step[["model", "step"]].itertuples(index=False, name=None)) == [
        (m, s) for m in ("naive", "theta") for s in (1, 2, 3)
    ]
    overall = aggregate_scores(scores, by=())
    assert len(overall) == 1
    assert overall["bias"].iloc[0] == pytest.approx(np.nanmean(forecasts.groupby("series").apply(
        lambda s: bias(s["y"], s["yhat"]), include_groups=False)))  # fmt: skip


def test_aggregate_scores_names_missing_columns():
    with pytest.raises(ValueError, match=re.escape("scores lack column(s) ['window']")):
        aggregate_scores(score_forecasts(_small_forecasts().drop(columns="window"), insample_scale=SCALE),
                         by=("model", "window"))  # fmt: skip


# --- the published M4 Weekly Naive2 figures -------------------------------------------------------------------------


def _m4_dir() -> Path:
    if not (M4_DIR / "Weekly-train.csv").is_file() or not (M4_DIR / "Weekly-test.csv").is_file():
        pytest.fail(f"M4 Weekly data missing: expected Weekly-train.csv and Weekly-test.csv in {M4_DIR} "
                    "(the shared data folder sits beside the repository clone)")  # fmt: skip
    return M4_DIR


def test_reproduces_published_m4_weekly_naive2():
    train, test = read_m4(_m4_dir(), "Weekly")
    # Weekly Naive2 = Naive1: the last training value, repeated over the 13-week horizon.
    last = train.groupby("series")["y"].last()
    forecasts = test.assign(
        model="Naive2", step=test.groupby("series").cumcount() + 1, yhat=test["series"].map(last)
    ).drop(columns="ts")
    scores = score_forecasts(forecasts, insample_scale=mase_scale(train, season=M4_SEASON["Weekly"]))
    assert scores["step"].max() == M4_HORIZON["Weekly"]
    naive2 = aggregate_scores(scores).set_index("model").loc["Naive2"]
    assert round(naive2["smape"], 3) == 9.161
    assert round(naive2["mase"], 3) == 2.777
    assert owa(naive2["smape"], naive2["mase"], smape_naive2=9.161, mase_naive2=2.777) == pytest.approx(1.0, abs=1e-4)
