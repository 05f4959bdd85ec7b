"""Prediction intervals calibrated on backtest errors (split conformal, per model and horizon step).

Errors are pooled across series after dividing by each series' scale (the mean absolute one-step change of
its training data, MASE's denominator), so a few backtest windows of many series give enough scores per
step. The interval at level L for a forecast is ``yhat ± q_L(step) · scale(series)`` where q_L is the
conformal quantile of the scaled absolute errors with the finite-sample correction ceil((n+1)·L)/n.

Every level gets its own bound: where the scores cannot tell two levels apart (too few of them, or ties), the higher
level is widened as a normal error's quantiles are spaced, so a 95% interval strictly contains the 80% one wherever
the errors are not all zero.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, STEP, YHAT, Y

__all__ = ["apply_intervals", "conformal_quantiles", "extend_quantiles", "series_scale"]


def series_scale(panel: pd.DataFrame) -> pd.Series:
    """Mean absolute one-step change per series; falls back to |mean| and then 1 where it is zero."""
    diffs = panel.groupby(SERIES, sort=True)[Y].diff().abs()
    scale = diffs.groupby(panel[SERIES]).mean()
    level = panel.groupby(SERIES, sort=True)[Y].mean().abs()
    scale = scale.where(scale > 0, level)
    return scale.where(scale > 0, 1.0).fillna(1.0)


def _conformal_quantile(scores: np.ndarray, level: float) -> float:
    scores = np.sort(scores[np.isfinite(scores)])
    n = len(scores)
    if n == 0:
        return math.nan
    rank = math.ceil((n + 1) * level)
    if rank <= n:
        return float(scores[rank - 1])
    # too few scores for this level (fewer than 1/(1-L) - 1): conformal gives no finite bound. Read the level
    # off a half-normal fitted to the scores instead, never below the largest score seen. That alone can still
    # give two levels one bound (the largest score, when it is far above the others): _separate_levels widens it
    half_normal = math.sqrt(float(np.mean(scores**2))) * _z(level)
    return max(float(scores[-1]), half_normal)


def _z(level: float) -> float:
    """The half-width of a central ``level`` interval of a standard normal (1.28 for 0.8, 1.96 for 0.95)."""
    return NormalDist().inv_cdf((1 + level) / 2)


def _separate_levels(row: dict[int, float]) -> dict[int, float]:
    """Each level's quantile strictly above the next lower level's wherever that one is above zero.

    With few scores the conformal rank of two levels can fall on one score (on the demo's quarterly series, six
    scores per step: the largest is the 80% bound and, through the half-normal floor, the 95% one too), and ties do
    the same with more. The higher level then gets the lower one's bound times the ratio of a normal error's
    quantiles (1.96 / 1.28 from 80% to 95%): what the spread of the errors cannot say, their usual shape does."""
    out: dict[int, float] = {}
    below: tuple[int, float] | None = None
    for level in sorted(row):
        q = row[level]
        if below is not None and below[1] > 0 and np.isfinite(q) and q <= below[1]:
            q = below[1] * _z(level / 100) / _z(below[0] / 100)
        out[level] = q
        if np.isfinite(q):
            below = (level, q)
    return out


def conformal_quantiles(backtest: pd.DataFrame, scale: pd.Series, levels: tuple[int, ...]) -> pd.DataFrame:
    """Quantiles of scaled absolute errors per (model, step) for each level (percent, e.g. 80, 95), made
    non-decreasing in the step (a running maximum).

    ``backtest`` has columns model, series, step, y, yhat. With too few scores for the finite-sample rank, a
    half-normal fitted to the scores (never below the largest) gives the bound: an honest over-cover rather than an
    under-cover. Each level's bound is strictly above the lower levels' where those are above zero, also after the
    running maximum over steps (a maximum of strictly ordered columns stays strictly ordered).
    """
    scores = (backtest[Y] - backtest[YHAT]).abs() / backtest[SERIES].map(scale).to_numpy()
    frame = backtest[["model", STEP]].assign(score=scores.to_numpy())
    rows = []
    for (model, step), group in frame.groupby(["model", STEP], sort=True):
        values = group["score"].to_numpy()
        by_level = _separate_levels({lvl: _conformal_quantile(values, lvl / 100) for lvl in levels})
        rows.append({"model": model, STEP: step, "n_scores": int(np.isfinite(values).sum()),
                     **{f"q_{lvl}": by_level[lvl] for lvl in levels}})
    return _monotone(pd.DataFrame(rows))


def _monotone(quantiles: pd.DataFrame) -> pd.DataFrame:
    """Each step's quantile at least the one before it (per model): uncertainty cannot shrink with the horizon,
    and a narrower band at step h + 1 than at step h is only the noise of a few hundred scores per step."""
    if quantiles.empty:
        return quantiles
    columns = [c for c in quantiles.columns if c.startswith("q_")]
    ordered = quantiles.sort_values(["model", STEP], kind="stable")
    ordered[columns] = ordered.groupby("model", sort=False)[columns].cummax()
    return ordered.reset_index(drop=True)


def apply_intervals(forecasts: pd.DataFrame, quantiles: pd.DataFrame, scale: pd.Series,
                    levels: tuple[int, ...]) -> pd.DataFrame:
    """Add lo_<L>/hi_<L> columns to forecasts (columns model, series, step, yhat)."""
    merged = forecasts.merge(quantiles, on=["model", STEP], how="left")
    width_unit = merged[SERIES].map(scale).to_numpy()
    out = forecasts.copy()
    for level in levels:
        half = merged[f"q_{level}"].to_numpy() * width_unit
        out[f"lo_{level}"] = merged[YHAT].to_numpy() - half
        out[f"hi_{level}"] = merged[YHAT].to_numpy() + half
    return out


def extend_quantiles(quantiles: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Quantiles for steps past the backtest's horizon (a prediction may ask for more steps than were backtested).

    Step h beyond the last calibrated step H gets ``q(H) · sqrt(h / H)``: errors of a forecast grow like a random
    walk's, so the band keeps widening instead of stopping at H. Calibrated steps are left as they are.
    """
    if quantiles.empty:
        return quantiles
    pieces = [quantiles]
    for _model, rows in quantiles.groupby("model", sort=True):
        last = rows.loc[rows[STEP].idxmax()]
        steps = np.arange(int(last[STEP]) + 1, horizon + 1)
        if len(steps) == 0:
            continue
        factor = np.sqrt(steps / last[STEP])
        extra = pd.DataFrame({"model": last["model"], STEP: steps, "n_scores": 0})
        for column in (c for c in quantiles.columns if c.startswith("q_")):
            extra[column] = last[column] * factor
        pieces.append(extra)
    return pd.concat(pieces, ignore_index=True)
