"""The median ensemble, the champion strategies and monotone conformal intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting.evaluation import (
    choose_by_strategy,
    choose_ensemble,
    ensemble_rows,
    robust_champions,
    select_strategy,
)
from forecasting.backtesting.intervals import conformal_quantiles
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.models.baselines import NaiveForecaster, SeasonalNaiveForecaster
from forecasting.models.ensemble import EnsembleForecaster, combine
from forecasting.models.statistical import ThetaForecaster


def test_combine_takes_the_median_of_the_members_present():
    rows = [("a", 1, 1.0), ("b", 1, 5.0), ("c", 1, 3.0), ("d", 1, 100.0), ("a", 2, 2.0), ("b", 2, 4.0)]
    frame = pd.DataFrame([{"model": m, SERIES: "s", TS: pd.Timestamp("2000-01-01") + pd.Timedelta(days=st),
                           STEP: st, YHAT: v} for m, st, v in rows])
    out = combine(frame, ["a", "b", "c"])
    assert out[YHAT].tolist() == [3.0, 3.0]  # "d" is no member; step 2 lacks "c": median of 2 and 4


def test_ensemble_model_equals_the_median_of_its_fitted_members():
    t = np.arange(48)
    panel = pd.DataFrame({SERIES: "s", TS: pd.date_range("2000-01-01", periods=48, freq="MS"),
                          Y: 100 + t + 10 * np.sin(2 * np.pi * t / 12)})
    members = {"naive": NaiveForecaster(), "seasonal_naive": SeasonalNaiveForecaster(), "theta": ThetaForecaster()}
    out = EnsembleForecaster(members).fit(panel, freq="MS").predict(6)
    each = np.vstack([m.predict(6)[YHAT].to_numpy() for m in members.values()])
    np.testing.assert_allclose(out[YHAT], np.median(each, axis=0))
    assert list(out[STEP]) == list(range(1, 7))


def _backtest(errors: dict[str, float], n_series: int = 4, windows: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest rows where model m forecasts y + errors[m] (a constant offset) everywhere, and the panel."""
    ts = pd.date_range("2000-01-01", periods=40, freq="MS")
    panel = pd.concat([pd.DataFrame({SERIES: f"s{i}", TS: ts, Y: 100.0 + i + np.arange(40)}) for i in range(n_series)],
                      ignore_index=True)
    rows = []
    for window in range(windows):
        cutoff = ts[30 + 4 * window]
        for i in range(n_series):
            for step in (1, 2):
                stamp = cutoff + pd.DateOffset(months=step)
                actual = 100.0 + i + ts.get_loc(stamp)
                rows += [{"window": window, "cutoff": cutoff, "model": m, SERIES: f"s{i}", TS: stamp, STEP: step,
                          Y: actual, YHAT: actual + e} for m, e in errors.items()]
    return pd.DataFrame(rows), panel


def test_the_ensemble_is_the_top_k_combination_with_the_lowest_backtest_mase():
    # a and b err in opposite directions: their mean is exact; c is poor, d is good but biased like a
    forecasts, panel = _backtest({"a": 1.0, "b": -1.0, "c": 5.0, "d": 1.5})
    choice = choose_ensemble(forecasts, panel, freq="MS", candidates=["a", "b", "c", "d"])
    assert (set(choice.members), choice.how, choice.score) == ({"a", "b"}, "median", 0.0)  # median of 2 = mean
    rows = ensemble_rows(forecasts, ["a", "b"], "mean")
    assert np.allclose(rows[YHAT], rows[Y]) and set(rows["model"]) == {"ensemble"}
    assert choose_ensemble(forecasts, panel, freq="MS", candidates=["a", "b", "c", "d"], hows=("mean",)).members == \
        ("a", "b")
    # one candidate: that model alone; none: no ensemble
    assert choose_ensemble(forecasts, panel, freq="MS", candidates=["c"]).members == ("c",)
    assert choose_ensemble(forecasts, panel, freq="MS", candidates=["x"]) is None


def _scores(table: dict[str, list[list[float]]]) -> pd.DataFrame:
    """table[series][model index][window] -> mase, models 'good' and 'lucky' and 'ens'."""
    rows = []
    for series, per_model in table.items():
        for model, values in zip(("good", "lucky", "ens"), per_model, strict=True):
            for window, value in enumerate(values):
                rows.append({"window": window, "model": model, SERIES: series, STEP: 1, "mase": value})
    return pd.DataFrame(rows)


def test_robust_rule_keeps_the_pooled_best_unless_a_series_wins_clearly_in_every_window():
    scores = _scores({
        "clear": [[0.5, 0.5, 0.5], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]],   # 'good' wins every window by 50%
        "noisy": [[0.5, 1.5, 0.6], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]],   # 'good' has the lowest mean, loses once
        "close": [[0.95, 0.95, 0.95], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]],  # wins every window, by 5% only
    })
    chosen = robust_champions(scores, metric="mase", model_order=["good", "lucky", "ens"], default="ens")
    assert dict(zip(chosen[SERIES], chosen["model"], strict=True)) == {"clear": "good", "noisy": "ens",
                                                                       "close": "ens"}
    per_series = choose_by_strategy(scores, "per_series", metric="mase", model_order=["good", "lucky", "ens"])
    assert set(per_series["model"]) == {"good"}


def test_pooled_strategy_gives_every_series_the_model_with_the_best_mean():
    scores = _scores({"a": [[1.0, 1.0], [0.5, 0.5], [0.9, 0.9]], "b": [[1.0, 1.0], [3.0, 3.0], [1.0, 1.0]]})
    chosen = choose_by_strategy(scores, "pooled", metric="mase", model_order=["good", "lucky", "ens"])
    assert set(chosen["model"]) == {"ens"} and len(chosen) == 2  # means: good 1.0, lucky 1.75, ens 0.95


def test_strategy_is_chosen_on_held_out_windows():
    # per series, the best model changes from window to window at random: choosing per series chases noise
    rng = np.random.default_rng(0)
    table = {f"s{i}": [list(1 + rng.uniform(0, 1, 4)), list(1 + rng.uniform(0, 1, 4)), [1.3] * 4]
             for i in range(30)}
    best, results = select_strategy(_scores(table), metric="mase", model_order=["good", "lucky", "ens"])
    assert set(results) == {"per_series", "robust", "pooled"}
    assert results["per_series"] > min(results["robust"], results["pooled"])
    assert best in {"robust", "pooled"}
    one_window = _scores({"a": [[1.0], [2.0], [3.0]]})
    assert select_strategy(one_window, metric="mase", model_order=["good", "lucky", "ens"]) == ("robust", {})


def test_a_strategy_that_wins_by_less_than_its_standard_error_gives_way_to_a_simpler_one():
    rng = np.random.default_rng(1)
    # 'good' is better than the ensemble on some series, worse on others, and varies from window to window more
    # than between series: choosing per series wins on held-out windows by less than that noise
    table = {f"s{i}": [list(rng.normal(1.0, 0.2) + rng.normal(0, 0.4, 3)), [3.0] * 3, [1.0] * 3] for i in range(60)}
    chosen, results = select_strategy(_scores(table), metric="mase", model_order=["good", "lucky", "ens"])
    assert results["per_series"] < results["robust"] < results["pooled"]  # the lowest mean: per series
    assert chosen == "pooled"


def test_a_tie_goes_to_the_simpler_strategy():
    # no series beats the ensemble by the robust rule's margin, so robust and pooled choose the same champions
    table = {f"s{i}": [[1.0 + 0.01 * (i % 3)] * 3, [2.0] * 3, [0.99] * 3] for i in range(10)}
    chosen, results = select_strategy(_scores(table), metric="mase", model_order=["good", "lucky", "ens"])
    assert results["robust"] == results["pooled"] and chosen == "pooled"


def test_a_strategy_that_wins_consistently_is_chosen_even_if_it_chooses_more():
    # half the series are 5% better on 'good' in every window, half on 'lucky': below robust's 10% margin, so only
    # choosing per series finds it; the difference never varies, so it is far beyond its standard error
    table = {f"s{i}": [[0.95] * 3, [2.0] * 3, [1.0] * 3] if i % 2 else [[2.0] * 3, [0.95] * 3, [1.0] * 3]
             for i in range(20)}
    chosen, results = select_strategy(_scores(table), metric="mase", model_order=["good", "lucky", "ens"])
    assert results["per_series"] == pytest.approx(0.95) and results["pooled"] == pytest.approx(1.0)
    assert chosen == "per_series"


def test_conformal_quantiles_never_narrow_with_the_step():
    rng = np.random.default_rng(1)
    rows = []
    for step in range(1, 6):
        # step 3 has smaller errors by chance; its band must still be as wide as step 2's
        spread = 0.3 if step == 3 else step
        for i in range(200):
            rows.append({"model": "m", SERIES: f"s{i}", STEP: step, Y: 0.0, YHAT: rng.normal(0, spread)})
    q = conformal_quantiles(pd.DataFrame(rows), pd.Series(1.0, index=[f"s{i}" for i in range(200)]), (80, 95))
    for level in (80, 95):
        assert (np.diff(q[f"q_{level}"].to_numpy()) >= 0).all()
        assert q[f"q_{level}"].iloc[2] == q[f"q_{level}"].iloc[1]
    assert q["q_95"].iloc[-1] == pytest.approx(np.quantile(np.abs(rng.normal(0, 5, 100000)), 0.95), rel=0.2)
