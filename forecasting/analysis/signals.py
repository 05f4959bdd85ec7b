"""Price-series analysis from a forecast and its backtest (pure): expected return over the horizon, probability of an
up move, an up / down / hold signal, the signal's hit rate and return against buy-and-hold over the backtest
windows, and volatility and value-at-risk from the backtest errors.

This describes what the models say about a price series; it is analysis of model output, not investment advice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean, pstdev

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLD",
    "DISCLAIMER",
    "BacktestWindow",
    "backtest_signal_stats",
    "direction_signal",
    "up_probability",
    "value_at_risk_95",
]

DEFAULT_THRESHOLD = 0.6  # P(up) at or above it: "up"; at or below 1 - it: "down"; between: "hold"
DISCLAIMER = ("Analysis of model output, not investment advice: past backtest windows are few and say little about "
              "the next move; probabilities assume the forecast errors are normal.")


def up_probability(*, last_value: float, forecast: float, bounds: Mapping[int, tuple[float, float]]) -> float:
    """P(value at the horizon > last value), from the forecast distribution read off its intervals.

    Each central ``level``% interval (lower, upper) gives a normal spread sigma = (upper - lower) / (2 z), with z the
    normal quantile of 0.5 + level / 200; the sigmas of all levels are averaged. Without a usable interval the answer
    is the point forecast's direction (1, 0, or 0.5 when flat).
    """
    sigmas = [(upper - lower) / (2 * NormalDist().inv_cdf(0.5 + level / 200))
              for level, (lower, upper) in bounds.items() if upper > lower]
    if not sigmas:
        return 1.0 if forecast > last_value else 0.0 if forecast < last_value else 0.5
    return 1.0 - NormalDist(forecast, fmean(sigmas)).cdf(last_value)


def direction_signal(p_up: float, *, threshold: float = DEFAULT_THRESHOLD) -> str:
    """"up" when P(up) >= threshold, "down" when P(up) <= 1 - threshold, else "hold"."""
    if not 0.5 < threshold < 1:
        raise ValueError(f"threshold must be between 0.5 and 1 (exclusive), got {threshold}")
    return "up" if p_up >= threshold else "down" if p_up <= 1 - threshold else "hold"


@dataclass(frozen=True)
class BacktestWindow:
    """One backtest origin: the value at the origin, and the actual and forecast values at the horizon's end."""

    origin_value: float
    actual: float
    forecast: float


def backtest_signal_stats(windows: Sequence[BacktestWindow]) -> dict:
    """How the forecast's direction did over the backtest windows.

    In a window the signal is the direction of the point forecast (the backtest keeps no intervals): long when it
    predicts a rise, short when a fall, flat when unchanged. ``hit_rate``: share of non-flat windows whose direction
    was right. ``strategy_return`` and ``buy_and_hold_return``: compounded over the windows (they do not overlap
    when the backtest step is the horizon, the default). ``volatility``: the standard deviation of the horizon
    return's forecast error; ``var_95_error``: the loss the error alone exceeds one time in twenty (minus the 5%
    quantile of the errors). All returns are fractions (0.01 = 1%).
    """
    usable = [w for w in windows if w.origin_value > 0]
    if not usable:
        return {"n_windows": 0, "hit_rate": None, "strategy_return": None, "buy_and_hold_return": None,
                "volatility": None, "var_95_error": None}
    predicted = np.array([w.forecast / w.origin_value - 1 for w in usable])
    actual = np.array([w.actual / w.origin_value - 1 for w in usable])
    position = np.sign(predicted)
    calls = position != 0
    hits = (np.sign(actual) == position)[calls]
    errors = actual - predicted
    return {
        "n_windows": len(usable),
        "hit_rate": float(hits.mean()) if hits.size else None,
        "strategy_return": float(np.prod(1 + position * actual) - 1),
        "buy_and_hold_return": float(np.prod(1 + actual) - 1),
        "volatility": pstdev(errors.tolist()) if len(errors) > 1 else None,
        "var_95_error": float(-np.quantile(errors, 0.05)) if len(errors) > 1 else None,
    }


def value_at_risk_95(expected_return: float, var_95_error: float | None) -> float | None:
    """The horizon loss of a long position exceeded one time in twenty: the error's 95% VaR less the expected
    return (a fraction; positive = a loss)."""
    if var_95_error is None or math.isnan(var_95_error):
        return None
    return var_95_error - expected_return
