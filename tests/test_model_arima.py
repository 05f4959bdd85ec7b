"""ArimaForecaster: coefficient recovery, fallbacks with reasons, forecast frame contract, pickling."""

from __future__ import annotations

import json
import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from forecasting.features.panel import STEP, TS, YHAT, future_timestamps
from forecasting.models.arima import ArimaForecaster

PHI, LEVEL = 0.7, 50.0


def _ar1(n: int, *, seed: int, phi: float = PHI, level: float = LEVEL) -> np.ndarray:
    """y_t - level = phi * (y_{t-1} - level) + e_t, e ~ N(0, 1), after a 100-step burn-in."""
    noise = np.random.default_rng(seed).normal(size=n + 100)
    y = np.zeros(n + 100)
    for t in range(1, n + 100):
        y[t] = phi * y[t - 1] + noise[t]
    return y[100:] + level


def _panel(values: dict[str, np.ndarray], *, freq: str, start: str = "2021-01-03") -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {"series": name, "ts": pd.date_range(start, periods=len(y), freq=freq).astype("datetime64[ns]"), "y": y}
        )
        for name, y in sorted(values.items())
    ]
    return pd.concat(frames, ignore_index=True)


def _check_forecast_frame(out: pd.DataFrame, panel: pd.DataFrame, *, freq: str, horizon: int) -> None:
    series = sorted(panel["series"].unique())
    assert list(out.columns) == ["series", TS, STEP, YHAT]
    assert len(out) == len(series) * horizon
    assert out[YHAT].dtype == np.float64 and out[TS].dtype == panel[TS].dtype
    assert out.sort_values(["series", STEP]).index.equals(out.index)
    for name, group in out.groupby("series"):
        last_ts = panel.loc[panel["series"] == name, TS].iloc[-1]
        assert group[STEP].tolist() == list(range(1, horizon + 1))
        assert group[TS].tolist() == list(future_timestamps(last_ts, freq, horizon))
    assert np.isfinite(out[YHAT]).all()


def test_fixed_order_recovers_ar1_coefficient():
    panel = _panel({"ar": _ar1(500, seed=7)}, freq="D")
    model = ArimaForecaster(order=(1, 0, 0)).fit(panel, freq="D")

    params = model.params_["ar"]
    assert model.fallbacks == {}
    assert params["order"] == [1, 0, 0] and params["trend"] == "c"
    assert abs(params["coefficients"]["ar.L1"] - PHI) < 0.05
    assert abs(params["coefficients"]["const"] - LEVEL) < 0.5
    json.dumps(model.params_)  # the registry stores these as JSON


def test_auto_order_forecasts_the_ar1_conditional_mean():
    y = _ar1(500, seed=7)
    model = ArimaForecaster().fit(_panel({"ar": y}, freq="D"), freq="D")

    out = model.predict(3)
    assert model.params_["ar"]["order"][1] == 0  # KPSS keeps the stationary series undifferenced
    expected = LEVEL + PHI * (y[-1] - LEVEL)
    assert out[YHAT].iloc[0] == pytest.approx(expected, abs=0.2)


def test_bad_series_fall_back_to_naive_with_their_reason_and_good_ones_do_not():
    good = {f"good{i}": _ar1(200, seed=i) for i in range(3)}
    panel = _panel({**good, "short": np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0]), "flat": np.full(60, 4.0)}, freq="D")

    model = ArimaForecaster().fit(panel, freq="D")
    out = model.predict(5)

    assert model.fallbacks == {
        "flat": "constant series: all 60 values equal 4",
        "short": "series too short: 6 points, need 10",
    }
    assert set(model.params_) == set(good)
    _check_forecast_frame(out, panel, freq="D", horizon=5)
    yhat = out.set_index(["series", STEP])[YHAT]
    assert (yhat["short"] == 9.0).all() and (yhat["flat"] == 4.0).all()
    for name, y in good.items():
        assert not np.allclose(yhat[name], y[-1]), f"{name} got the naive forecast"


def test_fixed_order_too_short_names_the_points_it_needs():
    panel = _panel({"a": _ar1(12, seed=1)}, freq="D")
    model = ArimaForecaster(order=(5, 1, 5)).fit(panel, freq="D")  # needs p + d + q + 2 = 13 points
    assert model.fallbacks == {"a": "series too short: 12 points, need 13"}


@pytest.mark.parametrize("freq", ["W-SUN", "D"])
def test_forecast_frame_and_pickle_round_trip(freq):
    rng = np.random.default_rng(0)
    panel = _panel(
        {"ar": _ar1(150, seed=3), "walk": 100 + np.cumsum(rng.normal(size=120)), "mean": 5 + rng.normal(size=90)},
        freq=freq,
    )
    model = ArimaForecaster().fit(panel, freq=freq)

    out = model.predict(8, exog=None)
    _check_forecast_frame(out, panel, freq=freq, horizon=8)
    assert model.fallbacks == {}

    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(restored.predict(8), out)
    assert restored.params_ == model.params_


@pytest.mark.parametrize("factor", [1e12, 1e-12])
def test_fit_is_scale_equivariant(factor):
    y = _ar1(300, seed=1)
    small = ArimaForecaster().fit(_panel({"a": y}, freq="D"), freq="D")
    scaled = ArimaForecaster().fit(_panel({"a": y * factor}, freq="D"), freq="D")

    assert scaled.fallbacks == {}
    assert scaled.params_["a"]["order"] == small.params_["a"]["order"]
    np.testing.assert_allclose(scaled.predict(5)[YHAT], small.predict(5)[YHAT] * factor, rtol=1e-6)
    coefficients = scaled.params_["a"]["coefficients"]
    assert coefficients["const"] == pytest.approx(small.params_["a"]["coefficients"]["const"] * factor, rel=1e-6)


def test_params_are_json_with_numpy_integer_orders():
    order = tuple(np.array([1, 0, 1]))  # e.g. read from a config array
    model = ArimaForecaster(order=order).fit(_panel({"a": _ar1(100, seed=3)}, freq="D"), freq="D")
    stored = json.loads(json.dumps(model.params_))
    assert stored["a"]["order"] == [1, 0, 1]
    assert set(stored["a"]["coefficients"]) == {"const", "ar.L1", "ma.L1", "sigma2"}


def test_fit_does_not_modify_the_panel():
    panel = _panel({"ar": _ar1(80, seed=2), "flat": np.full(30, 1.0)}, freq="D")
    before = panel.copy()
    ArimaForecaster().fit(panel, freq="D")
    pd.testing.assert_frame_equal(panel, before)


def test_non_convergence_is_a_fallback_not_an_error():
    panel = _panel({"ar": _ar1(300, seed=5)}, freq="D")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak to the user's console either
        model = ArimaForecaster(order=(2, 0, 2), maxiter=1).fit(panel, freq="D")
        out = model.predict(4)

    assert model.fallbacks == {
        "ar": "ARIMA(2,0,2) did not converge in 1 iterations (ConvergenceWarning: Maximum Likelihood optimization"
        " failed to converge. Check mle_retvals)"
    }
    assert model.params_ == {}
    assert (out[YHAT] == panel["y"].iloc[-1]).all()


def test_auto_skips_candidates_that_do_not_converge():
    panel = _panel({"ar": _ar1(300, seed=5)}, freq="D")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ArimaForecaster(maxiter=1).fit(panel, freq="D")

    # only the mean model converges in one iteration; the others are recorded, not chosen and not raised
    params = model.params_["ar"]
    assert model.fallbacks == {}
    assert params["order"] == [0, 0, 0]
    assert set(params["candidates_failed"]) == {"(1,0,1)", "(1,0,0)", "(0,0,1)"}
    assert all("did not converge" in reason for reason in params["candidates_failed"].values())


def test_auto_seasonal_part_is_chosen_for_a_strongly_seasonal_daily_series():
    rng = np.random.default_rng(4)
    y = 20 + 3 * np.sin(2 * np.pi * np.arange(140) / 7) + rng.normal(scale=0.5, size=140)
    panel = _panel({"weekly": y}, freq="D")

    model = ArimaForecaster(seasonal_order="auto").fit(panel, freq="D")

    assert model.params_["weekly"]["seasonal_order"] == [0, 1, 1, 7]
    out = model.predict(7)
    np.testing.assert_allclose(out[YHAT], 20 + 3 * np.sin(2 * np.pi * np.arange(140, 147) / 7), atol=1.0)


def test_seasonal_order_none_never_adds_a_seasonal_part():
    y = 20 + 3 * np.sin(2 * np.pi * np.arange(70) / 7) + np.random.default_rng(4).normal(size=70)
    model = ArimaForecaster(max_p=1, max_q=1).fit(_panel({"weekly": y}, freq="D"), freq="D")
    assert model.params_["weekly"]["seasonal_order"] == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": (1, 0)}, 'order must be "auto" or three non-negative integers (p, d, q), got (1, 0)'),
        ({"order": (1, -1, 0)}, 'order must be "auto" or three non-negative integers (p, d, q), got (1, -1, 0)'),
        (
            {"seasonal_order": (1, 0, 0, 1)},
            'seasonal_order must be None, "auto" or (P, D, Q, m) with m > 1, got (1, 0, 0, 1)',
        ),
        ({"seasonal_order": "yes"}, "seasonal_order must be None, \"auto\" or (P, D, Q, m) with m > 1, got 'yes'"),
        ({"order": "AUTO"}, "order must be \"auto\" or three non-negative integers (p, d, q), got 'AUTO'"),
        ({"trend": "drift"}, 'trend must be None, "n", "c", "t" or "ct", got \'drift\''),
        ({"max_p": -1}, "max_p must be a non-negative integer, got -1"),
        ({"maxiter": 0}, "maxiter must be a positive integer, got 0"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ArimaForecaster(**kwargs)


def test_predict_rejects_bad_horizon_and_unfitted_model():
    with pytest.raises(RuntimeError, match="before fit"):
        ArimaForecaster().predict(3)
    model = ArimaForecaster(order=(1, 0, 0)).fit(_panel({"a": _ar1(50, seed=0)}, freq="D"), freq="D")
    with pytest.raises(ValueError, match=re.escape("horizon must be a positive integer, got 0")):
        model.predict(0)


def test_arima_and_the_statistical_models_share_one_per_series_fit_loop():
    import forecasting.models.arima as arima_module
    from forecasting.models.local import fit_each_series
    from forecasting.models.statistical import EtsForecaster

    assert not hasattr(arima_module, "_fit_chunk")
    chunk = [("ar", _ar1(120, seed=1)), ("flat", np.full(40, 3.0))]
    for model in (ArimaForecaster(order=(1, 0, 0)), EtsForecaster()):
        (good, bad) = fit_each_series(chunk, (model, 1))
        assert good[0] == "ar" and good[1] is not None and good[2] is None
        assert bad[0] == "flat" and bad[1] is None and "constant series" in bad[2]


def test_a_fresh_process_fits_and_forecasts_without_printing_warnings():
    # statsmodels loads lazily (reading a config imports this module) and installs "always" filters for its
    # warnings when imported: it must be loaded before the fits silence theirs (KPSS interpolation warnings here)
    import subprocess
    import sys

    code = ("import numpy as np, pandas as pd\n"
            "from forecasting.models.arima import ArimaForecaster\n"
            "from forecasting.models.statistical import EtsForecaster\n"
            "rng = np.random.default_rng(1)\n"
            "panel = pd.concat([pd.DataFrame({'series': f's{i}', 'ts': pd.date_range('2000-01-01', periods=80, "
            "freq='QS'), 'y': 50 + rng.normal(0, 1, 80).cumsum() * (i + 1)}) for i in range(6)], ignore_index=True)\n"
            "for model in (ArimaForecaster(deseasonalise=True), EtsForecaster()):\n"
            "    model.fit(panel, freq='QS').predict(4)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Warning" not in result.stderr, result.stderr
