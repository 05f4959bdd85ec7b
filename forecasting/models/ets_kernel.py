"""Maximum-likelihood fits of the non-seasonal ETS forms, compiled with numba.

The likelihood, parameters, bounds and start values are statsmodels' ``ETSModel`` ones (Hyndman et al. 2008; the
initial level and trend are estimated with the smoothing parameters):

- point recursion, the same for additive and multiplicative errors: mu_t = l + phi * b; l <- mu_t + alpha * e_t;
  b <- phi * b + beta * e_t, with e_t = y_t - mu_t (phi = 1 without damping, b = 0 without trend);
- log-likelihood -n/2 (log(2 pi s2) + 1) - sum(log |mu_t|) for multiplicative errors (the last term is absent for
  additive ones), s2 the mean squared error (relative error e_t / mu_t for multiplicative ones);
- bounds 1e-4 < alpha < 1 - 1e-4, 1e-4 < beta / alpha < 1 - 1e-4, 0.8 <= phi <= 0.98;
- start values alpha 0.1, beta 0.01 (beta / alpha = 0.1), phi 0.98, level and trend from a line through the first
  ten points (the first two for shorter series).

statsmodels maximises it with L-BFGS-B after building a model object per form and series, about 10 ms per form on
a 200-point series; here a Nelder-Mead search on the bounded parameters mapped to the real line (logistic),
restarted once from its optimum, compiled: well under a millisecond. The optimum is statsmodels' one where both
find it; on the few series where they differ, either may be the higher.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["ets_fit"]

# compiled once per machine and cached next to this file (or in numba's user cache): a fresh process loads it
_jit = numba.njit(cache=True, nogil=True)

_LOG_2PI = math.log(2.0 * math.pi)
_LO, _HI = 1e-4, 1.0 - 1e-4
_PHI_LO, _PHI_HI = 0.8, 0.98


@_jit
def _squash(x, lo, hi):
    return lo + (hi - lo) / (1.0 + math.exp(-x))


@_jit
def _params_of(x, trend, damped):
    """(alpha, beta, phi, l0, b0) from the unconstrained vector [a, beta*, phi, l0, b0] (those present)."""
    alpha = _squash(x[0], _LO, _HI)
    i = 1
    beta = 0.0
    phi = 1.0
    if trend:
        beta = alpha * _squash(x[i], _LO, _HI)
        i += 1
        if damped:
            phi = _squash(x[i], _PHI_LO, _PHI_HI)
            i += 1
    level = x[i]
    slope = x[i + 1] if trend else 0.0
    return alpha, beta, phi, level, slope


@_jit
def _negloglik(x, y, mul, trend, damped):
    alpha, beta, phi, level, slope = _params_of(x, trend, damped)
    n = y.shape[0]
    sse = 0.0
    logs = 0.0
    for t in range(n):
        mu = level + phi * slope
        err = y[t] - mu
        if mul:
            if mu <= 0.0:
                return 1e300
            rel = err / mu
            sse += rel * rel
            logs += math.log(mu)
        else:
            sse += err * err
        level = mu + alpha * err
        slope = phi * slope + beta * err
    if not (sse > 0.0) or not math.isfinite(sse):
        return 1e300
    return 0.5 * n * (_LOG_2PI + math.log(sse / n) + 1.0) + logs


@_jit
def _concentrated(x, y, trend, damped, mul):
    """The smallest sum of squared errors over the initial level and trend, which enter the one-step forecasts
    linearly (a least-squares problem in two unknowns), for the smoothing parameters in x. Additive errors:
    exactly the likelihood's; multiplicative (``mul``): errors relative to y instead of the forecast, a close
    approximation that the full search then refines. Returns (sse, l0, b0). Runs the recursion from zero
    states on y and from each unit initial state on zeros."""
    alpha = _squash(x[0], _LO, _HI)
    beta = alpha * _squash(x[1], _LO, _HI) if trend else 0.0
    phi = _squash(x[2], _PHI_LO, _PHI_HI) if damped else 1.0
    lc = bc = 0.0  # from zero states, driven by y
    l1, b1 = 1.0, 0.0  # from a unit initial level
    l2, b2 = 0.0, 1.0  # from a unit initial trend
    s11 = s12 = s22 = r1 = r2 = s00 = 0.0
    for t in range(y.shape[0]):
        mc = lc + phi * bc
        ec = y[t] - mc
        m1 = l1 + phi * b1
        m2 = l2 + phi * b2
        w = 1.0 / (y[t] * y[t]) if mul else 1.0
        s00 += w * ec * ec
        s11 += w * m1 * m1
        r1 += w * ec * m1
        if trend:
            s12 += w * m1 * m2
            s22 += w * m2 * m2
            r2 += w * ec * m2
        lc = mc + alpha * ec
        bc = phi * bc + beta * ec
        l1 = m1 - alpha * m1
        b1 = phi * b1 - beta * m1
        l2 = m2 - alpha * m2
        b2 = phi * b2 - beta * m2
    if trend:
        det = s11 * s22 - s12 * s12
        if not (abs(det) > 1e-12 * (s11 * s22 + 1e-300)):
            return math.inf, 0.0, 0.0
        level = (r1 * s22 - r2 * s12) / det
        slope = (r2 * s11 - r1 * s12) / det
        return s00 - level * r1 - slope * r2, level, slope
    if not (s11 > 0.0):
        return math.inf, 0.0, 0.0
    level = r1 / s11
    return s00 - level * r1, level, 0.0


@_jit
def _objective(x, y, mul, trend, damped, concentrated):
    """Minus the log-likelihood: of the smoothing parameters with the initial states concentrated out
    (``concentrated``, additive errors), else of all parameters (x ends with the initial level and trend)."""
    n = y.shape[0]
    if concentrated:
        sse = _concentrated(x, y, trend, damped, mul)[0]
        if not (sse > 0.0) or not math.isfinite(sse):
            return 1e300
        return 0.5 * n * (_LOG_2PI + math.log(sse / n) + 1.0)
    return _negloglik(x, y, mul, trend, damped)


@_jit
def _final_state(x, y, trend, damped):
    alpha, beta, phi, level, slope = _params_of(x, trend, damped)
    for t in range(y.shape[0]):
        mu = level + phi * slope
        err = y[t] - mu
        level = mu + alpha * err
        slope = phi * slope + beta * err
    return alpha, beta, phi, level, slope


@_jit
def _nelder_mead(x0, steps, y, mul, trend, damped, concentrated, max_iter):
    d = x0.shape[0]
    # adaptive coefficients (Gao and Han 2012): the standard ones stall in 4 or 5 dimensions
    expand = 1.0 + 2.0 / d
    contract = 0.75 - 0.5 / d
    shrink = 1.0 - 1.0 / d
    simplex = np.empty((d + 1, d))
    values = np.empty(d + 1)
    for i in range(d + 1):
        simplex[i] = x0
        if i > 0:
            simplex[i, i - 1] += steps[i - 1]
        values[i] = _objective(simplex[i], y, mul, trend, damped, concentrated)
    for _ in range(max_iter):
        order = np.argsort(values)
        simplex = simplex[order]
        values = values[order]
        if values[d] - values[0] <= 1e-8 * (1.0 + abs(values[0])):
            break
        centroid = simplex[:d].sum(axis=0) / d
        reflected = centroid + (centroid - simplex[d])
        fr = _objective(reflected, y, mul, trend, damped, concentrated)
        if fr < values[0]:
            expanded = centroid + expand * (centroid - simplex[d])
            fe = _objective(expanded, y, mul, trend, damped, concentrated)
            if fe < fr:
                simplex[d] = expanded
                values[d] = fe
            else:
                simplex[d] = reflected
                values[d] = fr
        elif fr < values[d - 1]:
            simplex[d] = reflected
            values[d] = fr
        else:
            if fr < values[d]:
                contracted = centroid + contract * (reflected - centroid)
            else:
                contracted = centroid + contract * (simplex[d] - centroid)
            fc = _objective(contracted, y, mul, trend, damped, concentrated)
            if fc < min(fr, values[d]):
                simplex[d] = contracted
                values[d] = fc
            else:
                for i in range(1, d + 1):
                    simplex[i] = simplex[0] + shrink * (simplex[i] - simplex[0])
                    values[i] = _objective(simplex[i], y, mul, trend, damped, concentrated)
    best = np.argmin(values)
    return simplex[best].copy(), values[best]


def _logit(p: float, lo: float, hi: float) -> float:
    p = min(max(p, lo + 1e-9), hi - 1e-9)
    return math.log((p - lo) / (hi - p))


def _start(y: np.ndarray, trend: bool) -> tuple[float, float]:
    """statsmodels' start values of the initial level and trend (a line through the first ten points)."""
    if len(y) >= 10:
        t = np.arange(1.0, 11.0)
        slope, intercept = np.polyfit(t, y[:10], 1)
        return float(intercept), float(slope)
    return float(y[0]), float(y[1] - y[0]) if trend else 0.0


# start values of (alpha, beta / alpha, phi): statsmodels' own, then three far from it (the likelihood of the
# trend forms often has several optima on short series)
_STARTS = ((0.1, 0.1, 0.95), (0.5, 0.5, 0.9), (0.02, 0.5, 0.98), (0.3, 0.001, 0.98))


def _search(x: np.ndarray, steps: np.ndarray, y: np.ndarray, mul: bool, trend: bool, damped: bool,
            concentrated: bool) -> tuple[np.ndarray, float]:
    max_iter = 400 * len(x)
    x, value = _nelder_mead(x, steps, y, mul, trend, damped, concentrated, max_iter)
    for _ in range(3):  # restarts from the optimum with a fresh simplex: a collapsed one stops short of it
        again, better = _nelder_mead(x, steps, y, mul, trend, damped, concentrated, max_iter)
        improved = better < value - 1e-7 * (1.0 + abs(value))
        if better < value:
            x, value = again, better
        if not improved:
            break
    return x, value


def _smoothing_start(alpha: float, beta_share: float, phi: float, trend: bool, damped: bool) -> list[float]:
    x = [_logit(alpha, _LO, _HI)]
    if trend:
        x.append(_logit(beta_share, _LO, _HI))
        if damped:
            x.append(_logit(phi, _PHI_LO, _PHI_HI))
    return x


def _concentrated_optimum(y: np.ndarray, trend: bool, damped: bool, mul: bool) -> tuple[np.ndarray, float]:
    """The smoothing parameters searched from every start with the initial states concentrated out (exactly for
    additive errors, approximately for multiplicative ones). Returns the full vector (smoothing parameters,
    initial level and trend) and its objective."""
    best, value = None, math.inf
    for start in _STARTS if trend else _STARTS[:1]:  # one smoothing parameter: one optimum in practice
        x0 = np.array(_smoothing_start(*start, trend, damped))
        x, found = _search(x0, np.ones(len(x0)), y, mul, trend, damped, True)
        if found < value:
            best, value = x, found
    _, level, slope = _concentrated(best, y, trend, damped, mul)
    return np.array([*best, level, *([slope] if trend else [])]), value


def ets_fit(y: np.ndarray, *, mul: bool, trend: bool, damped: bool) -> dict | None:
    """The maximum-likelihood fit of one form to ``y`` (finite, positive for multiplicative errors): a dict with
    loglik, aicc, alpha, beta, phi and the final level and slope; None when the likelihood is not finite."""
    y = np.ascontiguousarray(y, dtype="float64")
    x, value = _concentrated_optimum(y, trend, damped, False)
    if mul:
        # multiplicative errors: the same point recursion, another likelihood; every parameter searched, from the
        # additive optimum and from statsmodels' start values
        spread = float(np.std(y)) or 1.0
        steps = np.array([1.0] * (len(x) - 1 - trend) + [0.1 * spread] + ([0.02 * spread] if trend else []))
        level, slope = _start(y, trend)
        starts = [x, np.array(_smoothing_start(*_STARTS[0], trend, damped) + [level] + ([slope] if trend else []))]
        value = math.inf
        for x0 in starts:
            found_x, found = _search(x0, steps, y, True, trend, damped, False)
            if found < value:
                x, value = found_x, found
    if not math.isfinite(value) or value >= 1e299:
        return None
    alpha, beta, phi, last_level, last_slope = _final_state(x, y, trend, damped)
    k = len(x) + 1  # statsmodels' degrees of freedom: the free parameters and the scale
    n = len(y)
    loglik = -float(value)
    aicc = -2.0 * loglik + 2.0 * k + (2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf)
    return {"loglik": loglik, "aicc": aicc, "alpha": alpha, "beta": beta, "phi": phi, "level": last_level,
            "slope": last_slope}
