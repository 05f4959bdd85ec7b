"""The scores the champion choice ranks models by: MASE scaled per backtest window, as the stored metrics are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting.evaluation import backtest_metrics, choice_scores
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y


def _forecasts(panel: pd.DataFrame, cutoffs: dict[int, pd.Timestamp], errors: dict[str, float]) -> pd.DataFrame:
    """Two-step backtest rows of every series at each window's cutoff; model m misses by errors[m]."""
    rows = []
    for series, part in panel.groupby(SERIES):
        y = part.set_index(TS)[Y]
        for window, cutoff in cutoffs.items():
            for step, ts in enumerate(y.index[y.index > cutoff][:2], start=1):
                rows += [{"window": window, "cutoff": cutoff, "model": m, SERIES: series, TS: ts, STEP: step,
                          Y: y[ts], YHAT: y[ts] + e} for m, e in errors.items()]
    return pd.DataFrame(rows)


def test_mase_is_scaled_by_each_windows_own_history_as_the_stored_metrics_are():
    ts = pd.date_range("2000-01-01", periods=40, freq="D")
    calm_then_wild = np.r_[np.arange(20) * 1.0, 20 + np.cumsum(np.tile([5.0, -3.0], 10))]
    panel = pd.DataFrame({SERIES: "a", TS: ts, Y: calm_then_wild})
    cutoffs = {1: ts[15], 0: ts[35]}
    forecasts = _forecasts(panel, cutoffs, {"m": 2.0})
    scores = choice_scores(forecasts, panel, freq="D")
    by_window = scores.groupby("window")["mase"].mean()
    # daily data: the frequency's period is 7. Window 1 knows only the calm part (weekly changes of 7), window 0
    # the wild part too
    assert by_window[1] == pytest.approx(2.0 / 7.0)
    known = calm_then_wild[:36]
    assert by_window[0] == pytest.approx(2.0 / np.abs(known[7:] - known[:-7]).mean())
    stored = backtest_metrics(forecasts, panel, freq="D")
    stored = stored[(stored["metric"] == "mase") & stored[SERIES].notna() & stored[STEP].notna()]
    assert stored["value"].mean() == pytest.approx(scores["mase"].mean())  # the same MASE as the stored metrics


def test_a_series_without_a_seasonal_scale_is_still_ranked():
    ts = pd.date_range("2000-01-03", periods=42, freq="D")
    weekly = np.tile([1.0, 2, 3, 4, 5, 6, 7], 6)  # exactly periodic: every lag-7 difference is zero
    panel = pd.concat([pd.DataFrame({SERIES: "periodic", TS: ts, Y: weekly}),
                       pd.DataFrame({SERIES: "flat", TS: ts, Y: 4.0})], ignore_index=True)
    forecasts = _forecasts(panel, {0: ts[35]}, {"good": 0.5, "bad": 2.0})
    scores = choice_scores(forecasts, panel, freq="D")
    means = scores.groupby([SERIES, "model"])["mase"].mean()
    # periodic: the mean one-step change of its 36 known points; flat: its level
    one_step = np.abs(np.diff(weekly[:36])).mean()
    assert means["periodic", "good"] == pytest.approx(0.5 / one_step)
    assert means["flat", "good"] == pytest.approx(0.5 / 4.0) and means["flat", "bad"] == pytest.approx(2.0 / 4.0)
    assert len(scores) == len(forecasts)


def test_smape_and_mae_need_no_scale_and_unknown_metrics_are_refused():
    ts = pd.date_range("2000-01-01", periods=10, freq="D")
    panel = pd.DataFrame({SERIES: "a", TS: ts, Y: np.arange(10.0) + 10})
    forecasts = _forecasts(panel, {0: ts[7]}, {"m": 1.0})
    mae = choice_scores(forecasts, None, freq="D", metric="mae")
    assert mae["mae"].tolist() == [1.0, 1.0]
    smape = choice_scores(forecasts, None, freq="D", metric="smape")
    assert smape["smape"].tolist() == pytest.approx([200 / 37, 200 / 39])
    with pytest.raises(ValueError, match="champion choice metric must be one of"):
        choice_scores(forecasts, panel, freq="D", metric="rmse")
