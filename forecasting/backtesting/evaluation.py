"""Backtest scoring and champion choice, shared by the pipeline and the accuracy benchmark (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.backtesting.intervals import apply_intervals, conformal_quantiles, series_scale
from forecasting.backtesting.metrics import mase_scale, metric_columns, score_forecasts
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.frequency import season_length
from forecasting.models.ensemble import combine

__all__ = ["CHOICE_METRICS", "COVERAGE_N", "ENSEMBLE_MAX_MEMBERS", "SIMPLEST_FIRST", "STRATEGIES", "EnsembleChoice",
           "backtest_metrics", "choice_scores", "choose_by_strategy", "choose_champions", "choose_ensemble",
           "cross_conformal", "ensemble_rows", "robust_champions", "select_strategy", "window_scores"]

ENSEMBLE_MAX_MEMBERS = 5


def cross_conformal(forecasts: pd.DataFrame, scale: pd.Series, levels: tuple[int, ...]) -> pd.DataFrame:
    """Backtest intervals for each window calibrated on the other windows only, so coverage is honest."""
    pieces = []
    for window in sorted(forecasts["window"].unique()):
        others = forecasts[forecasts["window"] != window]
        if others.empty:
            continue
        this = forecasts[forecasts["window"] == window]
        pieces.append(apply_intervals(this, conformal_quantiles(others, scale, levels), scale, levels))
    return pd.concat(pieces, ignore_index=True) if pieces else forecasts.iloc[0:0]


def window_scores(forecasts: pd.DataFrame, panel: pd.DataFrame, *, freq: str, levels: tuple[int, ...] = (),
                  season: int | None = None) -> pd.DataFrame:
    """Scores per (window, model, series, step), MASE scaled by each window's own training data with lag
    ``season`` (None: the frequency's period; M4 scores weekly and daily data with lag 1)."""
    return _window_scores(forecasts, panel, freq, levels, season)


def _window_scores(forecasts: pd.DataFrame, panel: pd.DataFrame, freq: str, levels: tuple[int, ...],
                   season: int | None = None) -> pd.DataFrame:
    """Scores per (window, model, series, step); MASE is scaled by each window's own training data (M4's rule)."""
    season = season or season_length(freq)
    with_intervals = cross_conformal(forecasts, series_scale(panel), levels) if levels else forecasts.iloc[0:0]
    use_levels = levels if not with_intervals.empty else ()
    source = with_intervals if use_levels else forecasts
    scales = _window_scales(source, panel, season, fallback=False)
    pieces = []
    for window, part in source.groupby("window", sort=True):
        insample = scales[scales["window"] == window].set_index(SERIES)["scale"]
        part = part[["model", SERIES, STEP, Y, YHAT] + [c for c in part.columns if c[:3] in ("lo_", "hi_")]]
        pieces.append(score_forecasts(part, insample_scale=insample, levels=use_levels).assign(window=window))
    return pd.concat(pieces, ignore_index=True)


CHOICE_METRICS = ("mase", "smape", "mae")


def choice_scores(forecasts: pd.DataFrame, panel: pd.DataFrame, *, freq: str, metric: str = "mase") -> pd.DataFrame:
    """The scores the champion choice ranks models by: ``metric`` per (window, model, series, step), from backtest
    forecasts (columns window, cutoff, model, series, step, y, yhat); rows without a finite score are dropped.

    MASE is scaled as the stored backtest metrics are, by each window's own training data with the frequency's
    period, so the pooled means the strategies compare weigh the series as those metrics do. Where that scale is
    zero or undefined (an exactly periodic or constant stretch) the series' mean one-step change, then its level,
    takes its place: the scale is the same for every model of a series and window, so the models are still ranked
    and the series keeps a champion. sMAPE and MAE need no scale.
    """
    if metric not in CHOICE_METRICS:
        raise ValueError(f"champion choice metric must be one of {list(CHOICE_METRICS)}, got {metric!r}")
    gap = (forecasts[Y] - forecasts[YHAT]).abs()
    if metric == "mase":
        value = gap / _window_scale(forecasts, panel, season_length(freq))
    elif metric == "smape":
        value = 200 * gap / (forecasts[Y].abs() + forecasts[YHAT].abs())
    else:
        value = gap
    finite = value.replace([np.inf, -np.inf], np.nan)
    scores = forecasts[["window", "model", SERIES, STEP]].assign(**{metric: finite.to_numpy()})
    return scores.dropna(subset=[metric]).reset_index(drop=True)


def _window_scale(forecasts: pd.DataFrame, panel: pd.DataFrame, season: int) -> np.ndarray:
    """Per forecast row, the MASE scale of its series' data up to its window's cutoff, with the zero-scale
    fallback (``choice_scores``)."""
    scales = _window_scales(forecasts, panel, season, fallback=True)
    rows = forecasts[[SERIES, "window"]].merge(scales, on=[SERIES, "window"], how="left")
    return rows["scale"].to_numpy(dtype="float64")


def _window_scales(forecasts: pd.DataFrame, panel: pd.DataFrame, season: int, *, fallback: bool) -> pd.DataFrame:
    """The MASE scale (``mase_scale``, lag ``season``) of each (series, window) of ``forecasts``: its series' data
    up to the window's cutoff. Columns series, window, scale. Where that scale is zero or undefined it is NaN, or
    with ``fallback`` the mean one-step change, then the level (``series_scale``). One pass over the panel for all
    windows: the stored metrics and the champion choice share it, so they cannot scale a window differently."""
    pairs = forecasts[[SERIES, "window", "cutoff"]].drop_duplicates([SERIES, "window"]).reset_index(drop=True)
    pairs["pair"] = np.arange(len(pairs))
    known = panel[[SERIES, TS, Y]].merge(pairs, on=SERIES)
    known = known[known[TS] <= known["cutoff"]]
    # one pseudo-series per (series, window): its history up to the cutoff
    known = known[["pair", TS, Y]].rename(columns={"pair": SERIES})
    scale = mase_scale(known, season=season)
    if fallback:
        scale = scale.fillna(series_scale(known))
    return pairs.assign(scale=pairs["pair"].map(scale).astype("float64"))[[SERIES, "window", "scale"]]


COVERAGE_N = "coverage_n"  # how many backtest errors the coverage_<level> figures rest on: a count, summed


def backtest_metrics(forecasts: pd.DataFrame, panel: pd.DataFrame, *, freq: str,
                     levels: tuple[int, ...] = ()) -> pd.DataFrame:
    """Long metrics: per (model, series, step) averaged over windows, then means per (model, step) and per
    model (series/step None = aggregated). Columns model, series, step, metric, value.

    With ``levels``, ``coverage_n`` counts the backtest errors whose interval was checked (each window's, calibrated
    on the other windows): per (model, series, step) the windows, summed (not averaged) over series and steps. A
    coverage of 0.75 on 4 errors says much less than on 400."""
    scores = _window_scores(forecasts, panel, freq, levels)
    cols = metric_columns(scores)
    keys = ["model", SERIES, STEP]
    per_series = (scores.groupby(keys, as_index=False)[cols].mean()
                  .melt(id_vars=keys, value_vars=cols, var_name="metric"))
    covered = [c for c in cols if c.startswith("coverage_")]
    if covered:  # every level is checked on the same errors: one count
        counts = scores.groupby(keys, as_index=False)[covered[0]].count().rename(columns={covered[0]: "value"})
        per_series = pd.concat([per_series, counts.assign(metric=COVERAGE_N)], ignore_index=True)
    is_count = per_series["metric"] == COVERAGE_N
    means, counts = per_series[~is_count], per_series[is_count]
    by_step = pd.concat([means.groupby(["model", STEP, "metric"], as_index=False)["value"].mean(),
                         counts.groupby(["model", STEP, "metric"], as_index=False)["value"].sum()],
                        ignore_index=True).assign(**{SERIES: None})
    overall = pd.concat([means.groupby(["model", "metric"], as_index=False)["value"].mean(),
                         counts.groupby(["model", "metric"], as_index=False)["value"].sum()],
                        ignore_index=True).assign(**{SERIES: None, STEP: None})
    return pd.concat([per_series, by_step, overall], ignore_index=True)


def choose_champions(metrics: pd.DataFrame, *, metric: str, model_order: Sequence[str]) -> pd.DataFrame:
    """Per series, the model with the lowest mean backtest ``metric`` (ties go to the earlier model).

    Returns columns series, model, score, metric.
    """
    rows = metrics[(metrics["metric"] == metric) & metrics[SERIES].notna() & metrics[STEP].notna()]
    means = rows.groupby([SERIES, "model"], as_index=False)["value"].mean().dropna(subset=["value"])
    order = {name: i for i, name in enumerate(model_order)}
    means = means.assign(order=means["model"].map(order)).sort_values([SERIES, "value", "order"])
    best = means.groupby(SERIES, as_index=False).first()[[SERIES, "model", "value"]]
    return best.rename(columns={"value": "score"}).assign(metric=metric)


# --- champion strategies -----------------------------------------------------------------------------------------

STRATEGIES = ("per_series", "robust", "pooled")
# from one model for every series to each series its own: the order in which select_strategy prefers them
SIMPLEST_FIRST = ("pooled", "robust", "per_series")


def _per_window(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean ``metric`` per (series, model, window), steps pooled."""
    return scores.groupby([SERIES, "model", "window"], as_index=False)[metric].mean().dropna(subset=[metric])


def _pooled_best(per_window: pd.DataFrame, metric: str, order: dict[str, int]) -> str:
    """The model with the lowest mean over series (each series' mean over its windows first)."""
    per_series = per_window.groupby(["model", SERIES])[metric].mean()
    overall = per_series.groupby("model").mean().reset_index()
    overall = overall.assign(order=overall["model"].map(order)).sort_values([metric, "order"])
    return str(overall["model"].iloc[0])


def robust_champions(scores: pd.DataFrame, *, metric: str, model_order: Sequence[str], default: str | None = None,
                     min_windows: int = 2, margin: float = 0.1) -> pd.DataFrame:
    """Per series, its own best model only where the evidence is strong; otherwise a default model.

    ``scores`` holds per (window, model, series, step) scores (``window_scores``). The default is ``default`` or,
    when None, the model with the best pooled backtest score over all series (usually the ensemble or the best
    global model). A series gets its own best model (lowest mean ``metric`` over windows and steps) only when it
    was scored in at least ``min_windows`` windows, beats the default in every one of them, and by at least
    ``margin`` (relative) on average: with two or three windows the per-series minimum is mostly noise.

    Returns columns series, model, score, metric.
    """
    order = {name: i for i, name in enumerate(model_order)}
    per_window = _per_window(scores, metric)
    if per_window.empty:
        return pd.DataFrame(columns=[SERIES, "model", "score", "metric"])
    default = default if default is not None else _pooled_best(per_window, metric, order)
    wide = per_window.pivot_table(index=[SERIES, "window"], columns="model", values=metric)
    means = per_window.groupby([SERIES, "model"], as_index=False)[metric].mean()
    means = means.assign(order=means["model"].map(order)).sort_values([SERIES, metric, "order"])
    best = means.groupby(SERIES, as_index=False).first()
    rows = []
    for row in best.itertuples(index=False):
        series, model, score = row[0], row[1], row[2]
        choice = model
        if model != default and default in wide.columns:
            windows = wide.loc[series]
            both = windows[[model, default]].dropna()
            base = both[default].mean() if len(both) else float("nan")
            strong = (len(both) >= min_windows and bool((both[model] < both[default]).all())
                      and both[model].mean() <= (1 - margin) * base)
            if not strong and pd.notna(windows[default]).any():
                choice, score = default, float(windows[default].mean())
        rows.append({SERIES: series, "model": choice, "score": float(score)})
    return pd.DataFrame(rows).assign(metric=metric)


def choose_by_strategy(scores: pd.DataFrame, strategy: str, *, metric: str,
                       model_order: Sequence[str]) -> pd.DataFrame:
    """Champions per series by ``strategy``: per_series (lowest mean score), robust (``robust_champions``) or
    pooled (the single model with the best pooled score, for every series)."""
    if strategy == "per_series":
        per_series = scores.groupby(["model", SERIES, STEP], as_index=False)[metric].mean().melt(
            id_vars=["model", SERIES, STEP], value_vars=[metric], var_name="metric")
        return choose_champions(per_series, metric=metric, model_order=model_order)
    if strategy == "robust":
        return robust_champions(scores, metric=metric, model_order=model_order)
    if strategy == "pooled":
        order = {name: i for i, name in enumerate(model_order)}
        per_window = _per_window(scores, metric)
        model = _pooled_best(per_window, metric, order)
        mine = per_window[per_window["model"] == model].groupby(SERIES, as_index=False)[metric].mean()
        every = pd.DataFrame({SERIES: per_window[SERIES].unique()})
        return every.merge(mine, on=SERIES, how="left").assign(model=model).rename(
            columns={metric: "score"})[[SERIES, "model", "score"]].assign(metric=metric)
    raise ValueError(f"unknown champion strategy {strategy!r}; known: {list(STRATEGIES)}")


def select_strategy(scores: pd.DataFrame, *, metric: str, model_order: Sequence[str],
                    strategies: Sequence[str] = STRATEGIES) -> tuple[str, dict[str, float]]:
    """The simplest strategy whose champions score within one standard error of the best on windows they were not
    chosen on (leave one window out); returns it and every strategy's mean held-out score.

    For every window, champions are chosen from the other windows and scored on it. The strategy with the lowest
    mean over windows and series is the best, but a simpler one (``SIMPLEST_FIRST``: pooled, then robust, then
    per_series) is used when its scores, paired with the best's per series and window, are worse on average by no
    more than the standard error of that mean difference: the one-standard-error rule. Two or three windows make
    per-series choices noisy, and a difference the held-out scores cannot tell from noise should not buy a rule
    that chooses more. With a single window there is nothing to hold out and "robust" is returned.
    """
    windows = sorted(scores["window"].unique())
    if len(windows) < 2:
        return "robust", {}
    held: dict[str, pd.Series] = {}
    for strategy in strategies:
        parts = []
        for window in windows:
            chosen = choose_by_strategy(scores[scores["window"] != window], strategy, metric=metric,
                                        model_order=model_order)
            here = _per_window(scores[scores["window"] == window], metric)
            parts.append(here.merge(chosen[[SERIES, "model"]], on=[SERIES, "model"]))
        held[strategy] = pd.concat(parts).set_index([SERIES, "window"])[metric]
    results = {strategy: float(held[strategy].mean()) for strategy in strategies}
    rank = {name: i for i, name in enumerate(SIMPLEST_FIRST)}
    best = min(strategies, key=lambda s: (results[s], rank[s]))
    for strategy in sorted(strategies, key=rank.__getitem__):
        if rank[strategy] >= rank[best] or _within_one_standard_error(held[strategy], held[best]):
            return strategy, results
    return best, results


def _within_one_standard_error(simpler: pd.Series, best: pd.Series) -> bool:
    """Whether ``simpler`` is worse than ``best`` on average by at most the standard error of the mean difference,
    paired on their common (series, window) index."""
    paired = pd.concat([simpler, best], axis=1, join="inner").dropna()
    difference = (paired.iloc[:, 0] - paired.iloc[:, 1]).to_numpy()
    if len(difference) < 2:
        return bool(len(difference) and difference[0] <= 0)
    return float(difference.mean()) <= float(difference.std(ddof=1)) / math.sqrt(len(difference))


@dataclass(frozen=True)
class EnsembleChoice:
    """The ensemble's members and combination, and its pooled backtest MASE (NaN when it was not scored)."""

    members: tuple[str, ...]
    how: str
    score: float = float("nan")

    def summary(self) -> dict:
        return {"members": list(self.members), "how": self.how, "backtest_mase": self.score}


def ensemble_rows(forecasts: pd.DataFrame, members: Sequence[str], how: str) -> pd.DataFrame:
    """The ensemble's backtest rows, combined from its members' backtest rows (the numbers fitting it gives)."""
    keys = ["window", "cutoff", SERIES, TS, STEP, Y]
    actual = forecasts.drop_duplicates(["window", SERIES, TS])[keys]
    combined = combine(forecasts, members, keys=["window", SERIES, TS], how=how).assign(model="ensemble")
    return combined.merge(actual, on=["window", SERIES, TS])[["window", "cutoff", "model", SERIES, TS, STEP, Y, YHAT]]


def _pooled_mase(forecasts: pd.DataFrame, panel: pd.DataFrame, freq: str, season: int | None) -> pd.Series:
    """Backtest MASE per model: the mean over series of each series' mean over windows and steps."""
    scores = window_scores(forecasts, panel, freq=freq, season=season)
    return scores.groupby(["model", SERIES])["mase"].mean().groupby("model").mean()


def choose_ensemble(forecasts: pd.DataFrame, panel: pd.DataFrame, *, freq: str, candidates: Sequence[str],
                    hows: Sequence[str] = ("median", "mean"), season: int | None = None,
                    max_members: int = ENSEMBLE_MAX_MEMBERS) -> EnsembleChoice | None:
    """The members (the top k of ``candidates`` by pooled backtest MASE, k = 2..max_members) and combination
    (of ``hows``) whose ensemble has the lowest pooled backtest MASE; ties go to fewer members, then to the
    earlier combination. One candidate with forecasts: that model alone. None: no candidate has forecasts."""
    part = forecasts[forecasts["model"].isin(candidates)]
    if part.empty:
        return None
    ranking = _pooled_mase(part, panel, freq, season).dropna()
    order = {name: i for i, name in enumerate(candidates)}
    ranked = sorted(ranking.index, key=lambda name: (ranking[name], order[name]))
    if len(ranked) < 2:
        return EnsembleChoice(tuple(ranked or sorted(set(part["model"]), key=order.get)[:1]), hows[0],
                              float(ranking.iloc[0]) if len(ranking) else float("nan"))
    best: EnsembleChoice | None = None
    for k in range(2, min(max_members, len(ranked)) + 1):
        for how in hows:
            members = tuple(ranked[:k])
            score = float(_pooled_mase(ensemble_rows(part, members, how), panel, freq, season).iloc[0])
            if best is None or score < best.score:
                best = EnsembleChoice(members, how, score)
    return best
