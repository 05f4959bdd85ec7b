"""M4's seasonality rule, shared by Naive2, Theta and ETS: test, classical decomposition, re-seasonalisation.

The M4 organisers' benchmark code (Mcompetitions/M4-methods, ``Benchmarks and Evaluation.R``) treats a series
as seasonal when it has at least three full periods and its autocorrelation at lag m is significant at 90%:

    |r_m| > 1.645 · sqrt((1 + 2 · Σ_{k<m} r_k²) / n)

and then adjusts it with a classical multiplicative decomposition (centred moving average trend, mean ratio per
position in the period, normalised to mean 1). Forecasts of the adjusted series are multiplied by the last
period's indices repeated. Multiplicative indices need positive data: a series with a value <= 0 is treated as
not seasonal (M4 only has positive series; elsewhere this keeps the adjustment from dividing by ~0).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

__all__ = ["SeasonalAdjustment", "adjust", "is_seasonal"]

_T_CRIT = 1.645  # two-sided 10%: M4's "90% autocorrelation test"


def is_seasonal(y: np.ndarray, m: int) -> bool:
    """M4's test: at least 3·m points and a significant autocorrelation at lag m (module docstring)."""
    y = np.asarray(y, dtype="float64")
    n = len(y)
    if m <= 1 or n < 3 * m or np.ptp(y) == 0:
        return False
    from statsmodels.tsa.stattools import acf  # not at import: reading a config imports the model classes

    r = acf(y, nlags=m, fft=False)[1:]
    limit = _T_CRIT / np.sqrt(n) * np.sqrt(1.0 + 2.0 * np.sum(r[: m - 1] ** 2))
    return bool(abs(r[m - 1]) > limit)


@dataclass(frozen=True)
class SeasonalAdjustment:
    """The adjusted series and the indices needed to put a forecast of it back on the original scale.

    ``indices`` holds one factor per position of the period, ``indices[0]`` belonging to the first point after
    the training data; all ones when the series was not found seasonal.
    """

    adjusted: np.ndarray
    indices: np.ndarray
    seasonal: bool

    def reseasonalise(self, forecast: np.ndarray) -> np.ndarray:
        """Multiply a forecast of the adjusted series (steps 1..h) by the matching indices."""
        forecast = np.asarray(forecast, dtype="float64")
        return forecast * np.resize(self.indices, len(forecast))


# Naive2, Theta and ETS adjust the same series of a window one after the other: the test and decomposition
# are done once per process for each (values, period), the result shared (its arrays are read-only)
_CACHE: OrderedDict[tuple, SeasonalAdjustment] = OrderedDict()
_CACHE_SIZE = 8192


def adjust(y: np.ndarray, m: int, *, test: bool = True) -> SeasonalAdjustment:
    """Seasonally adjust ``y`` with period ``m`` when M4's test finds it seasonal (or always, ``test=False``)."""
    y = np.asarray(y, dtype="float64")
    if m <= 1 or len(y) < 2 * m:
        return SeasonalAdjustment(adjusted=y, indices=np.ones(max(m, 1)), seasonal=False)
    key = (m, test, len(y), hashlib.blake2b(y.tobytes(), digest_size=16).digest())
    found = _CACHE.get(key)
    if found is not None:
        _CACHE.move_to_end(key)
        return found
    result = _adjust(y, m, test)
    for array in (result.adjusted, result.indices):
        array.setflags(write=False)
    _CACHE[key] = result
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


def _adjust(y: np.ndarray, m: int, test: bool) -> SeasonalAdjustment:
    seasonal = bool(np.all(y > 0)) and (is_seasonal(y, m) if test else True)
    if not seasonal:
        return SeasonalAdjustment(adjusted=y.copy(), indices=np.ones(m), seasonal=False)
    from statsmodels.tsa.seasonal import seasonal_decompose

    factors = np.asarray(seasonal_decompose(y, model="multiplicative", period=m).seasonal, dtype="float64")
    # factors repeat with period m from the first point; the next point after the data continues the cycle
    future = np.roll(factors[:m], -(len(y) % m))
    return SeasonalAdjustment(adjusted=y / factors, indices=future, seasonal=True)
