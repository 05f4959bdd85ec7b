"""Forecast accuracy metrics: array functions, M4 scoring (sMAPE, MASE, OWA) and a vectorised frame scorer.

Pure: no database, no I/O. Definitions follow the M4 competition (Makridakis, Spiliotis, Assimakopoulos, 2020):

- sMAPE = mean of 200·|y − f| / (|y| + |f|), in percent;
- MASE = mean |y − f| divided by the mean absolute seasonal difference (lag = season) of the in-sample values;
- OWA = ½·(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2), from set-level means.

Array functions take anything ``np.asarray`` accepts and return a Python float. They are NaN-safe: a position
where any input is NaN (an actual not observed yet, a forecast a model could not make) is ignored, and a metric
with nothing left to average is NaN rather than an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y

__all__ = [
    "METRICS",
    "MODEL",
    "aggregate_scores",
    "bias",
    "coverage",
    "interval_width",
    "mae",
    "mape",
    "mase",
    "mase_scale",
    "metric_columns",
    "owa",
    "rmse",
    "score_forecasts",
    "smape",
]

MODEL = "model"
METRICS = ("mae", "rmse", "mape", "smape", "mase", "bias")


# --- array functions ---------------------------------------------------------------------------------------------


def _aligned(*arrays: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """Float arrays of one shape, with every position where any of them is NaN dropped."""
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    sizes = {a.size for a in out}
    if len(sizes) > 1:
        raise ValueError(f"inputs differ in length: {[a.size for a in out]}")
    keep = ~np.logical_or.reduce([np.isnan(a) for a in out])
    return tuple(a[keep] for a in out)


def _mean(values: np.ndarray) -> float:
    # An empty selection is a legitimate outcome here (no observed actuals), so NaN, not a RuntimeWarning.
    return float(values.mean()) if values.size else float("nan")


def mae(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Mean absolute error."""
    y, yhat = _aligned(y, yhat)
    return _mean(np.abs(y - yhat))


def rmse(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Root mean squared error."""
    y, yhat = _aligned(y, yhat)
    return float(np.sqrt(_mean((y - yhat) ** 2)))


def mape(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Mean absolute percentage error, in percent.

    Zero guard: positions with a zero actual are excluded (their percentage error is undefined), so the mean is
    over the non-zero actuals only; when every actual is zero the result is NaN.
    """
    y, yhat = _aligned(y, yhat)
    nonzero = y != 0
    return _mean(100.0 * np.abs(y[nonzero] - yhat[nonzero]) / np.abs(y[nonzero]))


def _smape_terms(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    denom = np.abs(y) + np.abs(yhat)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = 200.0 * np.abs(y - yhat) / denom
    # A perfect forecast of zero is 0/0; M4 never meets it, but counting it as no error is the only sane reading.
    return np.where(denom == 0, 0.0, terms)


def smape(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Symmetric MAPE as M4 defines it: mean of 200·|y − f| / (|y| + |f|), in percent (0 to 200).

    A term where both y and f are 0 counts as 0.
    """
    y, yhat = _aligned(y, yhat)
    return _mean(_smape_terms(y, yhat))


def _seasonal_scale(insample: np.ndarray, season: int) -> float:
    """Mean absolute lag-``season`` difference; lag 1 when the series is shorter than season + 1; NaN if 0."""
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    lag = season if insample.size >= season + 1 else 1
    if insample.size < lag + 1:
        return float("nan")
    diffs = np.abs(insample[lag:] - insample[:-lag])
    diffs = diffs[~np.isnan(diffs)]
    scale = _mean(diffs)
    return scale if scale > 0 else float("nan")


def mase(y: npt.ArrayLike, yhat: npt.ArrayLike, *, insample: npt.ArrayLike, season: int) -> float:
    """Mean absolute scaled error: MAE divided by the in-sample mean absolute seasonal difference.

    ``insample`` is the series' training values in time order. The denominator uses lag ``season``, falls back to
    lag 1 when the series has fewer than season + 1 values, and the result is NaN when the denominator is 0 (a
    constant training series) or cannot be computed (fewer than 2 values).
    """
    scale = _seasonal_scale(np.asarray(insample, dtype=float).ravel(), season)
    return mae(y, yhat) / scale


def bias(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Mean of yhat − y: positive when the forecasts run high."""
    y, yhat = _aligned(y, yhat)
    return _mean(yhat - y)


def coverage(y: npt.ArrayLike, lo: npt.ArrayLike, hi: npt.ArrayLike) -> float:
    """Fraction of actuals inside the closed interval [lo, hi]."""
    y, lo, hi = _aligned(y, lo, hi)
    return _mean(((y >= lo) & (y <= hi)).astype(float))


def interval_width(lo: npt.ArrayLike, hi: npt.ArrayLike) -> float:
    """Mean of hi − lo."""
    lo, hi = _aligned(lo, hi)
    return _mean(hi - lo)


def owa(smape_value: float, mase_value: float, *, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average, M4's headline score: ½·(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2).

    Pass set-level values (means of per-series sMAPE and MASE), as M4 does; below 1 beats Naive2.
    """
    if not (smape_naive2 > 0 and mase_naive2 > 0):
        raise ValueError(f"Naive2 scores must be positive, got smape_naive2={smape_naive2}, mase_naive2={mase_naive2}")
    return 0.5 * (smape_value / smape_naive2 + mase_value / mase_naive2)


# --- frame scoring -----------------------------------------------------------------------------------------------


def mase_scale(panel: pd.DataFrame, *, season: int) -> pd.Series:
    """The MASE denominator of every series in a training ``panel`` (columns series, ts, y).

    Same rule as ``mase``: mean absolute lag-``season`` difference of the series' own values, lag 1 for series
    with fewer than season + 1 rows, NaN when it is 0 or undefined. Lags count rows, so the panel must be regular.
    Compute it from the training part only (per backtest fold, from that fold's train).
    """
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    ordered = panel.sort_values([SERIES, TS], kind="stable")
    by_series = ordered.groupby(SERIES, sort=True)[Y]

    def mean_abs_diff(lag: int) -> pd.Series:
        return (ordered[Y] - by_series.shift(lag)).abs().groupby(ordered[SERIES], sort=True).mean()

    seasonal = mean_abs_diff(season)
    scale = seasonal.where(by_series.size() >= season + 1, mean_abs_diff(1)) if season > 1 else seasonal
    return scale.where(scale > 0).astype(float).rename("mase_scale")


def _interval_columns(levels: Iterable[int | str]) -> list[tuple[str, str, str]]:
    return [(str(level), f"lo_{level}", f"hi_{level}") for level in levels]


def _row_terms(forecasts: pd.DataFrame, scale: pd.Series, levels: list[tuple[str, str, str]]) -> dict[str, np.ndarray]:
    """Per-row error terms whose group means give the metrics (rmse is the root of the mean ``sq``)."""
    y = forecasts[Y].to_numpy(dtype=float)
    yhat = forecasts[YHAT].to_numpy(dtype=float)
    err = yhat - y
    abs_err = np.abs(err)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.where(y != 0, 100.0 * abs_err / np.abs(y), np.nan)
    terms = {
        "mae": abs_err,
        "sq": err**2,
        "mape": ape,
        "smape": _smape_terms(y, yhat),
        "mase": abs_err / forecasts[SERIES].map(scale).to_numpy(dtype=float),
        "bias": err,
    }
    for level, lo_col, hi_col in levels:
        lo = forecasts[lo_col].to_numpy(dtype=float)
        hi = forecasts[hi_col].to_numpy(dtype=float)
        unknown = np.isnan(y) | np.isnan(lo) | np.isnan(hi)
        terms[f"coverage_{level}"] = np.where(unknown, np.nan, ((y >= lo) & (y <= hi)).astype(float))
        terms[f"width_{level}"] = hi - lo
    return terms


def score_forecasts(
    forecasts: pd.DataFrame,
    *,
    insample_scale: pd.Series | Mapping[str, float],
    levels: Sequence[int | str] = (),
) -> pd.DataFrame:
    """Score a long frame of forecasts joined to their actuals: one row per (model, series, step).

    Args:
        forecasts: columns model, series, step, y (actual), yhat, and lo_<level> / hi_<level> for every level.
            Every other column except lo_* / hi_* (e.g. window, cutoff, ts) is a grouping key kept in the
            output, placed before model, series, step. Rows sharing a key are pooled into one score.
        insample_scale: series -> MASE denominator, usually ``mase_scale(train, season=...)``. A series
            missing from it is an error; a NaN scale gives a NaN mase.
        levels: interval levels to score, e.g. (80, 95). Defaults to none.

    Returns:
        The keys, then mae, rmse, mape, smape, mase, bias, then coverage_<level>, width_<level> per level.
        Metrics are NaN-safe as the array functions: rows with a NaN y or yhat are ignored.
    """
    intervals = _interval_columns(levels)
    required = [MODEL, SERIES, STEP, Y, YHAT, *(c for _, lo, hi in intervals for c in (lo, hi))]
    missing = [c for c in required if c not in forecasts.columns]
    if missing:
        raise ValueError(f"forecasts lack column(s) {missing}")
    scale = pd.Series(insample_scale, dtype=float)
    unscaled = pd.Index(forecasts[SERIES].unique()).difference(scale.index)
    if len(unscaled):
        raise ValueError(f"insample_scale lacks {len(unscaled)} series, e.g. {unscaled[:5].tolist()}")

    extra = [c for c in forecasts.columns if c not in required and not str(c).startswith(("lo_", "hi_"))]
    keys = [*extra, MODEL, SERIES, STEP]
    terms = pd.DataFrame(_row_terms(forecasts, scale, intervals), index=forecasts.index)
    grouped = terms.groupby([forecasts[k] for k in keys], sort=True, dropna=False, observed=True).mean()
    grouped = grouped.rename(columns={"sq": "rmse"})
    grouped["rmse"] = np.sqrt(grouped["rmse"])
    columns = [*METRICS, *(f"{kind}_{level}" for level, _, _ in intervals for kind in ("coverage", "width"))]
    return grouped[columns].reset_index()


def metric_columns(scores: pd.DataFrame) -> list[str]:
    """The metric columns of a ``score_forecasts`` frame, in order; every other column is a grouping key."""
    return [c for c in scores.columns if c in METRICS or str(c).startswith(("coverage_", "width_"))]


def aggregate_scores(scores: pd.DataFrame, by: Sequence[str] = (MODEL,)) -> pd.DataFrame:
    """Mean scores per group of ``by``, taken M4-style as means of per-series values.

    Each series is first reduced to one value per metric within its group (rmse as the root of the mean squared
    row rmse, so it stays a per-series RMSE; everything else as a plain mean), then the series are averaged with
    equal weight. So set-level sMAPE and MASE are the means of per-series sMAPE and MASE, exactly as M4 reports
    them, even when some series have fewer scored steps. ``by=("model", "step")`` shows how error grows with the
    horizon; ``by=("model", "window")`` shows it per backtest fold; ``by=()`` gives one overall row.
    """
    by = list(by)
    missing = [c for c in [*by, SERIES] if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack column(s) {missing}")
    metrics = metric_columns(scores)
    inner = by if SERIES in by else [*by, SERIES]
    values = scores[inner + metrics].copy()
    if "rmse" in metrics:
        values["rmse"] = values["rmse"] ** 2
    per_series = values.groupby(inner, sort=True, dropna=False, observed=True)[metrics].mean()
    if "rmse" in metrics:
        per_series["rmse"] = np.sqrt(per_series["rmse"])
    if not by:
        return per_series.mean().to_frame().T.reset_index(drop=True)
    return per_series.groupby(level=by, sort=True, dropna=False, observed=True).mean().reset_index()
