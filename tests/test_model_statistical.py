"""Per-series statistical models (ets, theta, naive2) and parallel fitting (also arima's)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.models.arima import ArimaForecaster
from forecasting.models.registry import build_model
from forecasting.models.statistical import EtsForecaster, Naive2Forecaster, ThetaForecaster

MODELS = [EtsForecaster, ThetaForecaster, Naive2Forecaster]


def _seasonal_panel(n_series: int = 3, length: int = 96, *, seed: int = 0) -> pd.DataFrame:
    """Monthly series: trend times a strong multiplicative season, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for i in range(n_series):
        season = 1 + 0.3 * np.sin(2 * np.pi * (t + i) / 12)
        y = (100 + 10 * i + 0.5 * t) * season + rng.normal(0, 1.0, length)
        frames.append(pd.DataFrame({SERIES: f"s{i:02d}", TS: pd.date_range("2010-01-01", periods=length, freq="MS"),
                                    Y: y}))
    return pd.concat(frames, ignore_index=True)


def _split(panel: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = panel.groupby(SERIES)[TS].transform(lambda ts: ts.iloc[-horizon - 1])
    return panel[panel[TS] <= cut].reset_index(drop=True), panel[panel[TS] > cut].reset_index(drop=True)


def _mae(forecast: pd.DataFrame, test: pd.DataFrame) -> float:
    joined = test.merge(forecast, on=[SERIES, TS])
    return float((joined[Y] - joined[YHAT]).abs().mean())


@pytest.mark.parametrize("cls", MODELS)
def test_forecasts_every_series_on_the_next_timestamps(cls):
    panel = _seasonal_panel()
    out = cls().fit(panel, freq="MS").predict(7)
    assert list(out.columns) == [SERIES, TS, STEP, YHAT]
    assert len(out) == 3 * 7 and np.isfinite(out[YHAT]).all()
    for name, group in out.groupby(SERIES):
        last = panel.loc[panel[SERIES] == name, TS].max()
        assert list(group[TS]) == list(pd.date_range(last, periods=8, freq="MS")[1:])
        assert list(group[STEP]) == list(range(1, 8))


@pytest.mark.parametrize("cls", [EtsForecaster, ThetaForecaster])
def test_seasonal_trending_series_beat_naive_and_naive2(cls):
    train, test = _split(_seasonal_panel(), 12)
    mae = {label: _mae(model.fit(train, freq="MS").predict(12), test)
           for label, model in (("model", cls()), ("naive2", Naive2Forecaster()))}
    naive_last = train.groupby(SERIES).tail(1).set_index(SERIES)[Y]
    naive = float((test[Y] - test[SERIES].map(naive_last)).abs().mean())
    assert mae["model"] < 0.5 * naive
    assert mae["model"] < mae["naive2"]  # Naive2 removes the season but not the trend


def test_seasonal_adjustment_is_what_helps_on_seasonal_series():
    train, test = _split(_seasonal_panel(), 12)
    with_season = _mae(ThetaForecaster().fit(train, freq="MS").predict(12), test)
    without = _mae(ThetaForecaster(seasonal=False).fit(train, freq="MS").predict(12), test)
    assert with_season < 0.5 * without


def test_ets_closed_form_forecast_equals_statsmodels():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    rng = np.random.default_rng(1)
    y = 200 + np.cumsum(rng.normal(0.5, 2.0, 80))
    panel = pd.DataFrame({SERIES: "a", TS: pd.date_range("2000-01-01", periods=80, freq="YS"), Y: y})
    model = EtsForecaster(forms=["AAdN"]).fit(panel, freq="YS")
    scale = np.mean(np.abs(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ETSModel(y / scale, error="add", trend="add", damped_trend=True).fit(disp=False).forecast(6)
    np.testing.assert_allclose(model.predict(6)[YHAT], np.asarray(expected) * scale, rtol=1e-4)
    assert model.fits_["a"].form == "AAdN"


def test_ets_chooses_the_form_with_the_lowest_aicc():
    rng = np.random.default_rng(2)
    y = 50 + 2.0 * np.arange(60) + rng.normal(0, 0.5, 60)  # a strong straight trend
    panel = pd.DataFrame({SERIES: "a", TS: pd.date_range("2000-01-01", periods=60, freq="YS"), Y: y})
    fitted = EtsForecaster().fit(panel, freq="YS").fits_["a"]
    assert fitted.form in {"AAN", "AAdN", "MAdN"}
    one_form = {form: EtsForecaster(forms=[form]).fit(panel, freq="YS").fits_["a"].aicc
                for form in ("ANN", "AAN", "AAdN", "MNN", "MAdN")}
    assert fitted.aicc == pytest.approx(min(one_form.values()))



def test_ets_combines_its_forms_by_akaike_weights_by_default_and_best_keeps_one():
    rng = np.random.default_rng(3)
    y = 80 + 0.5 * np.arange(48) + rng.normal(0, 2.0, 48)  # a weak trend: several forms are plausible
    panel = pd.DataFrame({SERIES: "a", TS: pd.date_range("2000-01-01", periods=48, freq="YS"), Y: y})
    combined = EtsForecaster().fit(panel, freq="YS")
    fit = combined.fits_["a"]
    aicc = np.array([f.aicc for f in fit.forms])
    expected_weights = np.exp(-0.5 * (aicc - aicc.min()))
    np.testing.assert_allclose(fit.weights, expected_weights / expected_weights.sum())
    assert len(fit.forms) >= 2 and 0 < max(fit.weights) < 1  # a real mix, not one form
    single = {f.form: EtsForecaster(forms=[f.form]).fit(panel, freq="YS").predict(5)[YHAT].to_numpy()
              for f in fit.forms}
    mix = sum(w * single[f.form] for w, f in zip(fit.weights, fit.forms, strict=True))
    np.testing.assert_allclose(combined.predict(5)[YHAT], mix, rtol=1e-9)
    best = EtsForecaster(combine="best").fit(panel, freq="YS")
    np.testing.assert_allclose(best.predict(5)[YHAT], single[fit.form], rtol=1e-9)
    with pytest.raises(ValueError, match="combine"):
        EtsForecaster(combine="vote")

def _ses_sse(y: np.ndarray, alpha: float) -> float:
    level, total = y[0], 0.0
    for value in y:
        total += (value - level) ** 2
        level += alpha * (value - level)
    return total


def test_theta_equals_statsmodels_theta_on_non_seasonal_series_of_different_lengths():
    from statsmodels.tsa.forecasting.theta import ThetaModel

    rng = np.random.default_rng(4)
    lengths = [70, 12, 45, 200, 70]  # fitted together: shorter series are padded inside the batch
    panel = pd.concat([pd.DataFrame({SERIES: f"s{i}", TS: pd.date_range("2000-01-01", periods=n, freq="YS"),
                                     Y: 100 + np.cumsum(rng.normal(0.3 * (i - 2), 1.0 + i, n))})
                       for i, n in enumerate(lengths)], ignore_index=True)
    model = ThetaForecaster().fit(panel, freq="YS")
    out = model.predict(6)
    for name, group in panel.groupby(SERIES):
        y = group[Y].to_numpy()
        reference = ThetaModel(y, period=1, deseasonalize=False).fit()
        np.testing.assert_allclose(out.loc[out[SERIES] == name, YHAT], np.asarray(reference.forecast(6)), rtol=1e-4)
        # the same least-squares estimate, to the optimisers' tolerance, never a worse one
        alpha = model.fits_[name].alpha
        assert alpha == pytest.approx(float(reference.params["alpha"]), abs=1e-3)
        assert _ses_sse(y, alpha) <= _ses_sse(y, float(reference.params["alpha"])) * (1 + 1e-9)
        single = ThetaForecaster().fit_series(y, 1)  # one series alone gives the same fit as in the panel
        assert single.alpha == pytest.approx(alpha, abs=1e-9) and single.ses == pytest.approx(model.fits_[name].ses)


@pytest.mark.parametrize("cls", [EtsForecaster, ThetaForecaster])
def test_constant_and_short_series_fall_back_to_naive(cls):
    ts = pd.date_range("2000-01-01", periods=30, freq="MS")
    panel = pd.concat([pd.DataFrame({SERIES: "flat", TS: ts, Y: 5.0}),
                       pd.DataFrame({SERIES: "short", TS: ts[:2], Y: [1.0, 2.0]})], ignore_index=True)
    model = cls().fit(panel, freq="MS")
    out = model.predict(3)
    assert set(model.fallbacks) == {"flat", "short"}
    assert "constant" in model.fallbacks["flat"] and "too short" in model.fallbacks["short"]
    np.testing.assert_allclose(out.loc[out[SERIES] == "short", YHAT], 2.0)


@pytest.mark.parametrize("make", [lambda n: EtsForecaster(n_jobs=n), lambda n: ThetaForecaster(n_jobs=n),
                                  lambda n: ArimaForecaster(max_p=1, max_q=1, n_jobs=n)])
def test_two_processes_give_the_same_forecasts_as_one(make):
    panel = _seasonal_panel(n_series=20, length=48, seed=5)
    one = make(1).fit(panel, freq="MS")
    two = make(2).fit(panel, freq="MS")
    pd.testing.assert_frame_equal(one.predict(5), two.predict(5))
    assert one.fallbacks == two.fallbacks
    pickle.loads(pickle.dumps(two))  # fitted models are stored pickled


def test_registry_builds_the_models_from_the_config():
    config = parse_config({"name": "t", "series": [{"name": "x", "source": "sample", "params": {"dataset": "nile"}}],
                           "models": {"enabled": ["ets", "theta", "naive2", "arima"], "ets": {"forms": ["ANN"]},
                                      "arima": {"max_p": 1}},
                           "modeling": {"n_jobs": 2}})
    ets = build_model("ets", config, has_exog=False)
    assert (ets.forms, ets.n_jobs) == (("ANN",), 2)
    assert build_model("theta", config, has_exog=False).n_jobs == 2
    arima = build_model("arima", config, has_exog=False)
    assert (arima.max_p, arima.max_q, arima.n_jobs) == (1, 2, 2)


def test_arima_on_m4_adjusted_series_beats_plain_arima_on_seasonal_data():
    train, test = _split(_seasonal_panel(n_series=2, length=72), 12)
    plain = ArimaForecaster(max_p=1, max_q=1).fit(train, freq="MS")
    adjusted = ArimaForecaster(max_p=1, max_q=1, deseasonalise=True).fit(train, freq="MS")
    assert all(adjusted.params_[name]["seasonally_adjusted"] for name in adjusted.params_)
    assert _mae(adjusted.predict(12), test) < 0.5 * _mae(plain.predict(12), test)
    # in-sample values (the hybrid's residual base) are back on the series' own scale
    fitted = adjusted.fitted_values("s00")
    actual = train.loc[train[SERIES] == "s00", Y].to_numpy()
    assert np.mean(np.abs(fitted[1:] - actual[1:])) < 0.2 * np.mean(np.abs(actual))


_ETS_FORMS = {"ANN": ("add", None, False), "AAN": ("add", "add", False), "AAdN": ("add", "add", True),
              "MNN": ("mul", None, False), "MAdN": ("mul", "add", True)}


@pytest.mark.parametrize("form", list(_ETS_FORMS))
def test_the_compiled_ets_fit_maximises_statsmodels_likelihood(form):
    """The same likelihood as statsmodels' ETSModel (equal at statsmodels' estimates), and a maximum at least as
    high on most series (both searches can stop at another local maximum on short series)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    from forecasting.models import ets_kernel

    error, trend, damped = _ETS_FORMS[form]
    rng = np.random.default_rng(11)
    gaps = []
    for i in range(12):
        n = 24 + 8 * i
        y = 1.0 + np.cumsum(rng.normal(0.01 * (i % 3), 0.05, n))
        y = y / np.mean(np.abs(y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = ETSModel(y, error=error, trend=trend, damped_trend=damped).fit(disp=False)
        ours = ets_kernel.ets_fit(y, mul=error == "mul", trend=trend is not None, damped=damped)
        gaps.append(ours["loglik"] - reference.llf)
        # the kernel's likelihood at statsmodels' estimates is statsmodels' own
        params = dict(zip(reference.model.param_names, reference.params, strict=True))
        alpha = params["smoothing_level"]
        x = [ets_kernel._logit(alpha, ets_kernel._LO, ets_kernel._HI)]
        if trend:
            x.append(ets_kernel._logit(params["smoothing_trend"] / alpha, ets_kernel._LO, ets_kernel._HI))
            if damped:
                x.append(ets_kernel._logit(params["damping_trend"], ets_kernel._PHI_LO, ets_kernel._PHI_HI))
        x += [params["initial_level"]] + ([params["initial_trend"]] if trend else [])
        own = -ets_kernel._negloglik(np.array(x), y, error == "mul", trend is not None, damped)
        assert own == pytest.approx(reference.llf, abs=1e-6)
        assert ours["aicc"] == pytest.approx(-2 * ours["loglik"] + 2 * (len(x) + 1)
                                             + 2 * (len(x) + 1) * (len(x) + 2) / (n - len(x) - 2))
    gaps = np.array(gaps)
    assert np.median(gaps) > -1e-4 and (gaps > -1e-3).mean() >= 0.75, gaps
