"""Models behind the common interface: baselines, target transforms, recursive global models, hybrid,
and conformal intervals whose coverage matches the nominal level on series with known noise."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting.backtest import BacktestSpec, run_backtest
from forecasting.backtesting.intervals import apply_intervals, conformal_quantiles, series_scale
from forecasting.features.build import FeatureSpec
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.models.arima import ArimaForecaster
from forecasting.models.baselines import NaiveForecaster, SeasonalNaiveForecaster
from forecasting.models.hybrid import HybridForecaster
from forecasting.models.recursive import LightGBMGlobal, LinearGlobal, RandomForestGlobal
from forecasting.models.transforms import apply_inverse, make_transforms


def _panel(n_series: int = 3, length: int = 60, *, freq: str = "D", seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        t = np.arange(length)
        y = 50 + 10 * i + 3 * np.sin(2 * np.pi * t / 7) + rng.normal(0, noise, length)
        frames.append(pd.DataFrame({SERIES: f"s{i}", TS: pd.date_range("2024-01-01", periods=length, freq=freq), Y: y}))
    return pd.concat(frames, ignore_index=True)


def _check_forecast_frame(out: pd.DataFrame, *, panel: pd.DataFrame, horizon: int, freq: str) -> None:
    assert list(out.columns[:4]) == [SERIES, TS, STEP, YHAT]
    assert sorted(out[SERIES].unique()) == sorted(panel[SERIES].unique())
    assert len(out) == panel[SERIES].nunique() * horizon
    assert np.isfinite(out[YHAT]).all()
    for name, group in out.groupby(SERIES):
        last = panel.loc[panel[SERIES] == name, TS].max()
        expected = pd.date_range(last, periods=horizon + 1, freq=freq)[1:]
        assert list(group.sort_values(STEP)[TS]) == list(expected)
        assert list(group.sort_values(STEP)[STEP]) == list(range(1, horizon + 1))


SPEC = FeatureSpec(lags=(1, 2, 7), rolling_windows=(7,))
MODELS = {
    "naive": NaiveForecaster,
    "seasonal_naive": SeasonalNaiveForecaster,
    "linear": lambda: LinearGlobal(SPEC, transforms=("diff", "scale")),
    "random_forest": lambda: RandomForestGlobal(SPEC, params={"n_estimators": 20}),
    "lightgbm_global": lambda: LightGBMGlobal(SPEC, transforms=("scale",), params={"n_estimators": 30}),
    "arima": lambda: ArimaForecaster(order=(1, 0, 0)),
    "hybrid": lambda: HybridForecaster(
        ArimaForecaster(order=(1, 0, 0)), LightGBMGlobal(SPEC, params={"n_estimators": 20})
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("horizon", [1, 5])
def test_every_model_forecasts_every_series_on_the_grid(name, horizon):
    panel = _panel()
    before = panel.copy()
    model = MODELS[name]().fit(panel, freq="D")
    out = model.predict(horizon)
    _check_forecast_frame(out, panel=panel, horizon=horizon, freq="D")
    pd.testing.assert_frame_equal(panel, before)  # fit does not mutate its input
    again = pickle.loads(pickle.dumps(model)).predict(horizon)
    assert again[YHAT].to_numpy().tobytes() == out[YHAT].to_numpy().tobytes()


def test_naive_and_seasonal_naive_values():
    panel = _panel(n_series=1, length=14)
    last_week = panel[Y].to_numpy()[-7:]
    assert (NaiveForecaster().fit(panel, freq="D").predict(3)[YHAT] == panel[Y].iloc[-1]).all()
    seasonal = SeasonalNaiveForecaster().fit(panel, freq="D").predict(9)[YHAT].to_numpy()
    np.testing.assert_array_equal(seasonal, np.concatenate([last_week, last_week[:2]]))
    short = SeasonalNaiveForecaster().fit(panel.iloc[:3], freq="D")
    assert short.fallbacks == {"s0": "shorter than one season (3 < 7 points): naive"}


def test_target_transforms_round_trip():
    panel = _panel()
    transforms = make_transforms(["diff", "scale"])
    transformed = panel
    for transform in transforms:
        transformed = transform.fit_transform(transformed)
    # forecasting the transformed values of the next steps must give back the original next values
    future = _panel(length=65).groupby(SERIES).tail(5).reset_index(drop=True)
    history_last = panel.groupby(SERIES)[Y].last()
    diffs = future.groupby(SERIES)[Y].diff()
    diffs[future.groupby(SERIES).cumcount() == 0] = future[Y] - future[SERIES].map(history_last)
    scaled = (diffs - future[SERIES].map(transforms[1].mean_)) / future[SERIES].map(transforms[1].std_)
    fc = pd.DataFrame({SERIES: future[SERIES], STEP: future.groupby(SERIES).cumcount() + 1, YHAT: scaled})
    np.testing.assert_allclose(apply_inverse(transforms, fc)[YHAT], future[Y], rtol=1e-12)
    with pytest.raises(ValueError, match=r"unknown target transform\(s\) \['log'\]"):
        make_transforms(["log"])


def test_global_model_learns_a_shared_pattern_and_beats_naive():
    panel = _panel(n_series=6, length=120, noise=0.2)
    train = panel.groupby(SERIES).head(113).reset_index(drop=True)
    test = panel.groupby(SERIES).tail(7).reset_index(drop=True)
    errors = {}
    for name in ("naive", "lightgbm_global", "linear"):
        out = MODELS[name]().fit(train, freq="D").predict(7)
        joined = test.merge(out, on=[SERIES, TS])
        errors[name] = float(np.abs(joined[Y] - joined[YHAT]).mean())
    assert errors["lightgbm_global"] < 0.6 * errors["naive"]
    assert errors["linear"] < 0.6 * errors["naive"]


def test_recursive_forecast_does_not_depend_on_values_after_the_origin():
    panel = _panel()
    model = MODELS["lightgbm_global"]().fit(panel, freq="D")
    first = model.predict(3)
    # the model's stored history is the only input of predict: appending data elsewhere changes nothing
    panel.loc[panel[SERIES] == "s1", Y] += 1000
    assert model.predict(3)[YHAT].to_numpy().tobytes() == first[YHAT].to_numpy().tobytes()


def test_series_too_short_for_the_transforms_fall_back_to_naive():
    panel = pd.concat(
        [_panel(n_series=2), pd.DataFrame({SERIES: ["tiny"], TS: [pd.Timestamp("2024-03-01")], Y: [5.0]})],
        ignore_index=True,
    )
    model = LinearGlobal(SPEC, transforms=("diff",)).fit(panel, freq="D")
    assert model.fallbacks == {"tiny": "too short for the target transforms: naive"}
    out = model.predict(2)
    assert out.loc[out[SERIES] == "tiny", YHAT].tolist() == [5.0, 5.0]


def test_conformal_intervals_cover_close_to_nominal_on_known_noise():
    """Random walks with Gaussian steps: the naive forecast's h-step error is N(0, h·σ²), so calibrated
    intervals must cover about their nominal share of new outcomes."""
    rng = np.random.default_rng(7)
    n_series, length = 60, 160
    frames = [
        pd.DataFrame(
            {
                SERIES: f"w{i}",
                TS: pd.date_range("2020-01-01", periods=length, freq="D"),
                Y: 100 + rng.normal(0, 1 + i % 3, length).cumsum(),
            }
        )
        for i in range(n_series)
    ]
    panel = pd.concat(frames, ignore_index=True)
    result = run_backtest(panel, {"naive": NaiveForecaster}, BacktestSpec(horizon=4, n_windows=8, step=4), freq="D")
    fc = result.forecasts
    calibration, evaluation = fc[fc["window"] < 4], fc[fc["window"] >= 4]
    scale = series_scale(panel)
    quantiles = conformal_quantiles(calibration, scale, (80, 95))
    covered = apply_intervals(evaluation, quantiles, scale, (80, 95))
    for level in (80, 95):
        inside = ((covered[Y] >= covered[f"lo_{level}"]) & (covered[Y] <= covered[f"hi_{level}"])).mean()
        assert abs(inside - level / 100) < 0.06, (level, inside)
    # intervals widen with the horizon, as the error variance does
    assert quantiles.sort_values("step")["q_80"].is_monotonic_increasing


def test_too_few_scores_for_a_level_still_give_each_level_its_own_width():
    # one series, three backtest errors per step: too few for a finite conformal 80% or 95% bound
    backtest = pd.DataFrame({"model": "m", STEP: 1, SERIES: "s", Y: [10.0, 10.0, 10.0], YHAT: [9.0, 12.0, 10.5]})
    q = conformal_quantiles(backtest, pd.Series({"s": 1.0}), (50, 80, 95)).iloc[0]
    assert q["q_50"] == 1.0  # enough scores for the median: the conformal rank, ceil(4 * 0.5) = 2nd smallest
    assert 2.0 <= q["q_80"] < q["q_95"]  # never below the largest error seen, and wider for the higher level
    assert q["q_95"] == pytest.approx(np.sqrt((1 + 4 + 0.25) / 3) * 1.959964, rel=1e-4)


def test_levels_that_the_scores_cannot_tell_apart_still_get_their_own_bound():
    """The demo's quarterly partition: two series, three windows, six scores per step with one far above the rest.
    The 80% rank is the largest score and the 95% half-normal lies below it: both were the largest score."""
    scores = [0.1, 0.1, 0.2, 0.1, 0.1, 3.0]
    backtest = pd.DataFrame({"model": "m", STEP: 1, SERIES: ["a", "b"] * 3, Y: 0.0, YHAT: scores})
    q = conformal_quantiles(backtest, pd.Series({"a": 1.0, "b": 1.0}), (80, 95)).iloc[0]
    assert q["q_80"] == 3.0  # the conformal rank ceil(7 * 0.8) = 6: the largest score
    assert q["q_95"] == pytest.approx(3.0 * 1.959964 / 1.281552, rel=1e-6)  # spaced as a normal error's quantiles
    # ties do the same with more scores, and the running maximum over steps keeps the levels apart
    tied = pd.DataFrame({"model": "m", STEP: np.repeat([1, 2], 40), SERIES: "a", Y: 0.0,
                         YHAT: np.r_[np.linspace(0.1, 1, 30), np.full(10, 2.0), np.linspace(0.1, 1, 40)]})
    by_step = conformal_quantiles(tied, pd.Series({"a": 1.0}), (50, 80, 95)).set_index(STEP)
    assert (by_step["q_50"] < by_step["q_80"]).all() and (by_step["q_80"] < by_step["q_95"]).all()
    assert by_step.loc[1, "q_80"] == 2.0 and by_step.loc[2, "q_80"] == 2.0  # step 2 raised to step 1's bound
    # errors that are all zero give zero-width bounds at every level: nothing to widen
    exact = pd.DataFrame({"model": "m", STEP: 1, SERIES: "a", Y: [1.0, 2.0], YHAT: [1.0, 2.0]})
    assert conformal_quantiles(exact, pd.Series({"a": 1.0}), (80, 95))[["q_80", "q_95"]].iloc[0].tolist() == [0, 0]


def test_backtest_keeps_going_when_one_model_fails():
    class Broken(NaiveForecaster):
        name = "broken"

        def fit(self, panel, *, freq, exog=None):
            raise RuntimeError("boom")

    spec = BacktestSpec(horizon=3, n_windows=2, step=3)
    result = run_backtest(_panel(), {"naive": NaiveForecaster, "broken": Broken}, spec, freq="D")
    assert set(result.forecasts["model"]) == {"naive"}
    assert sorted((f["model"], f["window"]) for f in result.failures) == [("broken", 0), ("broken", 1)]
    assert all(f["error"] == "RuntimeError: boom" for f in result.failures)


def test_backtest_scores_a_short_series_only_on_windows_where_it_has_min_train_points():
    long = _panel(2, 60)
    # 14 points ending with the others: at the cutoffs 9, 12 and 15 days before the end it has 5, 2 and 0 points
    short = _panel(1, 14, seed=1).assign(**{SERIES: "short", TS: lambda f: f[TS] + pd.Timedelta(days=46)})
    panel = pd.concat([long, short], ignore_index=True)
    factories = {"naive": NaiveForecaster, "linear": lambda: LinearGlobal(SPEC, transforms=("scale",))}
    spec = BacktestSpec(horizon=3, n_windows=5, step=3, min_train=dict.fromkeys(factories, 4))
    result = run_backtest(panel, factories, spec, freq="D")
    windows = result.forecasts.groupby(SERIES)["window"].unique().map(sorted).to_dict()
    assert windows == {"s0": [0, 1, 2, 3, 4], "s1": [0, 1, 2, 3, 4], "short": [0, 1, 2]}
    # every model is scored on the same (series, window) pairs, so no model is compared on easier windows
    pairs = result.forecasts.groupby("model").apply(lambda f: set(zip(f[SERIES], f["window"], strict=True)))
    assert pairs["naive"] == pairs["linear"] and not result.failures


def test_missing_timestamps_are_forward_filled_on_the_grid():
    from forecasting.features.panel import fill_gaps

    panel = pd.DataFrame(
        {
            SERIES: ["a"] * 4 + ["b"] * 3,
            TS: pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06", "2024-01-01", "2024-01-02", "2024-01-03"]
            ),
            Y: [1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        }
    ).astype({TS: "datetime64[ns]"})
    filled, counts = fill_gaps(panel, "D")
    assert counts == {"a": 2}
    a = filled[filled[SERIES] == "a"]
    assert a[TS].tolist() == list(pd.date_range("2024-01-01", "2024-01-06", freq="D"))
    assert a[Y].tolist() == [1.0, 2.0, 2.0, 2.0, 5.0, 6.0]
    pd.testing.assert_frame_equal(
        filled[filled[SERIES] == "b"].reset_index(drop=True), panel[panel[SERIES] == "b"].reset_index(drop=True)
    )


def test_seasonal_difference_round_trip_over_more_than_one_season():
    rng = np.random.default_rng(3)
    season, length, ahead = 4, 30, 10  # ten steps: every phase wraps around at least twice
    frames = []
    for name in ("a", "b"):
        values = 50 + np.tile(rng.normal(0, 5, season), length // season + 4)[:length + ahead] + rng.normal(
            0, 0.3, length + ahead).cumsum()
        frames.append(pd.DataFrame({SERIES: name, TS: pd.date_range("2020-01-01", periods=length + ahead,
                                                                     freq="QS"), Y: values}))
    full = pd.concat(frames, ignore_index=True)
    panel = full.groupby(SERIES).head(length).reset_index(drop=True)
    transform = make_transforms(["sdiff"], season=season)[0]
    transformed = transform.fit_transform(panel)
    assert len(transformed) == 2 * (length - season)  # the first season of each series has no predecessor
    # forecasting the true seasonal differences of the next steps must give back the true next values
    true_sdiff = full.assign(d=full.groupby(SERIES)[Y].diff(season)).groupby(SERIES).tail(ahead)
    fc = pd.DataFrame({SERIES: true_sdiff[SERIES].to_numpy(), STEP: np.tile(np.arange(1, ahead + 1), 2),
                       YHAT: true_sdiff["d"].to_numpy()})
    expected = full.groupby(SERIES).tail(ahead)[Y].to_numpy()
    np.testing.assert_allclose(apply_inverse([transform], fc)[YHAT], expected, rtol=1e-12)


def test_a_series_is_scored_by_the_models_that_can_take_it_all_on_the_same_windows():
    long = _panel(2, 60)
    # 14 and 12 points, ending with the others
    short = _panel(1, 14, seed=1).assign(**{SERIES: "short", TS: lambda f: f[TS] + pd.Timedelta(days=46)})
    shorter = _panel(1, 12, seed=2).assign(**{SERIES: "shorter", TS: lambda f: f[TS] + pd.Timedelta(days=48)})
    panel = pd.concat([long, short, shorter], ignore_index=True)
    factories = {"naive": NaiveForecaster, "linear": lambda: LinearGlobal(SPEC, transforms=("scale",))}
    # linear needs 10 training points, so 13 for one window of 3: "short" has them (at the latest cutoff only),
    # and both models are scored there alone; "shorter" is left to naive, scored wherever it has a point
    spec = BacktestSpec(horizon=3, n_windows=5, step=3, min_train={"naive": 1, "linear": 10})
    result = run_backtest(panel, factories, spec, freq="D")
    windows = result.forecasts.groupby([SERIES, "model"])["window"].unique().map(sorted).to_dict()
    assert windows[("short", "naive")] == windows[("short", "linear")] == [0]
    assert windows[("shorter", "naive")] == [0, 1, 2] and ("shorter", "linear") not in windows
    takes = spec.series_models(panel.groupby(SERIES).size(), factories)
    assert list(takes["linear"]) == ["s0", "s1", "short"]
    assert list(takes["naive"]) == ["s0", "s1", "short", "shorter"]
    assert not result.failures


def test_a_partition_of_series_too_short_for_every_window_is_backtested_where_they_can_be():
    panel = _panel(1, 5)
    spec = BacktestSpec(horizon=3, n_windows=3, step=3)
    result = run_backtest(panel, {"naive": NaiveForecaster}, spec, freq="D")
    assert not result.failures and len(result.folds) == 3
    assert sorted(result.forecasts["window"].unique()) == [0]  # 2 points before the latest window only
