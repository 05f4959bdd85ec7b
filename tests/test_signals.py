"""Price-series analysis (forecasting/analysis/signals.py): the probability of an up move from the intervals, the
signal and its backtest record, on synthetic prices and on the recorded Yahoo payload (fetched through the real
source)."""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np
import pytest
from test_source_yahoo_finance import _aapl, _aapl_history, _isolated_yfinance, _source, yahoo  # noqa: F401

from forecasting.analysis.signals import (
    BacktestWindow,
    backtest_signal_stats,
    direction_signal,
    up_probability,
    value_at_risk_95,
)

Z80 = NormalDist().inv_cdf(0.9)
Z95 = NormalDist().inv_cdf(0.975)


def test_up_probability_reads_the_spread_off_every_level():
    # sigma 1 around 101: both levels agree, P(value > 100) = P(Z > -1)
    bounds = {80: (101 - Z80, 101 + Z80), 95: (101 - Z95, 101 + Z95)}
    assert up_probability(last_value=100, forecast=101, bounds=bounds) == pytest.approx(NormalDist().cdf(1))
    assert up_probability(last_value=100, forecast=100, bounds=bounds) == pytest.approx(0.5)
    assert up_probability(last_value=102, forecast=101, bounds=bounds) == pytest.approx(1 - NormalDist().cdf(1))
    # no usable interval: the point forecast's direction
    assert up_probability(last_value=100, forecast=103, bounds={80: (103, 103)}) == 1.0
    assert up_probability(last_value=100, forecast=97, bounds={}) == 0.0


@pytest.mark.parametrize(("p_up", "signal"), [(0.6, "up"), (0.95, "up"), (0.59, "hold"), (0.41, "hold"),
                                              (0.4, "down"), (0.0, "down")])
def test_signal_with_its_threshold(p_up, signal):
    assert direction_signal(p_up, threshold=0.6) == signal


def test_threshold_must_be_above_one_half():
    with pytest.raises(ValueError, match=re.escape("threshold must be between 0.5 and 1 (exclusive), got 0.4")):
        direction_signal(0.7, threshold=0.4)


def test_backtest_record_on_synthetic_windows():
    windows = [BacktestWindow(origin_value=100, actual=110, forecast=105),  # called up, went up
               BacktestWindow(origin_value=100, actual=95, forecast=98),    # called down, went down
               BacktestWindow(origin_value=100, actual=102, forecast=99),   # called down, went up
               BacktestWindow(origin_value=100, actual=90, forecast=100)]   # no call: flat, not counted
    stats = backtest_signal_stats(windows)
    assert stats["n_windows"] == 4 and stats["hit_rate"] == pytest.approx(2 / 3)
    assert stats["strategy_return"] == pytest.approx(1.10 * 1.05 * 0.98 * 1.0 - 1)
    assert stats["buy_and_hold_return"] == pytest.approx(1.10 * 0.95 * 1.02 * 0.90 - 1)
    errors = np.array([0.05, -0.03, 0.03, -0.10])
    assert stats["volatility"] == pytest.approx(errors.std())
    assert stats["var_95_error"] == pytest.approx(-np.quantile(errors, 0.05))
    assert value_at_risk_95(0.02, stats["var_95_error"]) == pytest.approx(stats["var_95_error"] - 0.02)
    assert backtest_signal_stats([])["hit_rate"] is None


def test_random_walk_prices_give_no_edge_to_a_coin_flip_forecast():
    """On a seeded geometric random walk, a forecast unrelated to the future is right about half the time, and a
    forecast that knows the future is always right and beats buy-and-hold."""
    rng = np.random.default_rng(3)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 2001)))
    origins, ends = prices[:-1:5][:400], prices[5::5][:400]
    guesses = origins * (1 + rng.choice([-0.01, 0.01], size=origins.size))
    blind = backtest_signal_stats([BacktestWindow(o, e, g) for o, e, g in zip(origins, ends, guesses, strict=True)])
    assert 0.42 < blind["hit_rate"] < 0.58
    oracle = backtest_signal_stats([BacktestWindow(o, e, e) for o, e in zip(origins, ends, strict=True)])
    assert oracle["hit_rate"] == 1.0 and oracle["volatility"] == 0 and oracle["var_95_error"] == 0
    assert oracle["strategy_return"] > max(oracle["buy_and_hold_return"], 0)


def test_backtest_record_on_the_recorded_aapl_payload(yahoo, tmp_path):  # noqa: F811
    """AAPL's 24 sessions as yfinance parses them from the recorded chart answer, in 5-session windows: a forecast
    of the opposite move is never right and earns the mirror of buy-and-hold."""
    _aapl_history(yahoo)
    closes = _source(tmp_path).fetch(_aapl(field="close"), series="aapl").frame["value"].to_numpy()
    assert len(closes) == 24
    origins, ends = closes[0:20:5], closes[5:25:5]
    opposite = [BacktestWindow(o, e, o - (e - o)) for o, e in zip(origins, ends, strict=True)]
    stats = backtest_signal_stats(opposite)
    moves = ends / origins - 1
    assert stats["n_windows"] == 4 and stats["hit_rate"] == 0.0
    assert stats["buy_and_hold_return"] == pytest.approx(np.prod(1 + moves) - 1)
    assert stats["strategy_return"] == pytest.approx(np.prod(1 - np.abs(moves)) - 1)
    assert stats["volatility"] == pytest.approx(np.std(2 * moves)) and not math.isnan(stats["var_95_error"])
