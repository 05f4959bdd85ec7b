"""Which series of a partition can be modelled, and by which models: a series that cannot is skipped with its
reason, so it never costs the others their forecasts.

Screening has two levels. A series with a data problem (non-finite or huge values, constant, or shorter than
what any enabled model needs) is left out of the run. Otherwise each model takes the series that meet its own
need (``Forecaster.min_points``: naive 1 point, a global model with explicit lags its largest lag + 1), so a
short series is still forecast by the models that can. A series too short for one backtest window of a model
is forecast without a backtest score; ``forecasting.steps.select`` gives it a champion by the rule documented
there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.backtesting.backtest import BacktestSpec
from forecasting.backtesting.folds import auto_windows
from forecasting.config import PipelineConfig
from forecasting.features.panel import SERIES, Y
from forecasting.frequency import Frequency
from forecasting.ingest.validation import MAX_ABS_VALUE
from forecasting.models.registry import model_class
from forecasting.skips import Skip

__all__ = ["backtest_spec", "model_needs", "model_skips", "screen_series"]


def model_needs(config: PipelineConfig, frequency: Frequency, lengths: pd.Series) -> dict[str, int]:
    """Per enabled model, the points a series of this partition (its series of these ``lengths``) needs for that
    model to fit it."""
    return {name: model_class(name).min_points(config, freq=frequency.alias, lengths=lengths)
            for name in config.models.enabled}


def backtest_spec(config: PipelineConfig, frequency: Frequency, lengths: pd.Series) -> BacktestSpec:
    """The partition's backtest: the configured windows, or with "auto" as many as the lengths of its screened
    series allow (``auto_windows``); the step defaults to the horizon. Every step resolves it from the same
    screened panel of the run's snapshot, so they agree."""
    settings, horizon = config.backtest, config.preprocessing.horizon
    step = settings.step or horizon
    n_windows = settings.n_windows
    if n_windows == "auto":
        n_windows = auto_windows(lengths, horizon=horizon, season=frequency.season, step=step)
    return BacktestSpec(horizon=horizon, n_windows=n_windows, step=step, refit=settings.refit,
                        min_train=model_needs(config, frequency, lengths))


def screen_series(panel: pd.DataFrame, config: PipelineConfig,
                  frequency: Frequency) -> tuple[pd.DataFrame, list[Skip]]:
    """The panel without the series that no model can take, and a skip (with the reason) for each of those."""
    if panel.empty:
        return panel, []
    needs = model_needs(config, frequency, panel.groupby(SERIES).size())
    least = min(needs.values())
    stats = panel.groupby(SERIES, sort=True)[Y].agg(["size", "min", "max"])
    finite = panel[Y].pipe(np.isfinite).groupby(panel[SERIES]).all()
    largest = panel[Y].abs().groupby(panel[SERIES]).max()
    skips = []
    for series_id, row in stats.iterrows():
        reason = None
        if not finite[series_id]:
            reason = "non-finite values (NaN or infinity) in the stored data"
        elif largest[series_id] > MAX_ABS_VALUE:
            reason = f"values too large to model (max |y| = {largest[series_id]:.3g} > {MAX_ABS_VALUE:.0e})"
        elif row["size"] < least:
            reason = (f"too short: {int(row['size'])} points, every enabled model needs more "
                      f"({_needs_text(needs)})")
        elif row["min"] == row["max"] and row["size"] > 1:  # one point is no pattern yet: naive forecasts it
            reason = f"constant series (every value is {row['min']:.6g}): nothing to learn"
        if reason:
            skips.append(Skip(int(series_id), reason))
    skipped = {s.series_id for s in skips}
    kept = panel[~panel[SERIES].isin(skipped)].reset_index(drop=True) if skipped else panel
    return kept, skips


def model_skips(lengths: pd.Series, spec: BacktestSpec) -> list[Skip]:
    """A skip of each (series, model) the model does not take (``BacktestSpec.series_models``), and of each it
    takes but no model can be scored on: such a series is still forecast."""
    takes = spec.series_models(lengths, spec.min_train)
    scored = {m: set(lengths.index[lengths >= spec.one_window(m)]) for m in spec.min_train}
    unscored = set(lengths.index) - set().union(*scored.values())
    skips = []
    for model, need in spec.min_train.items():
        taken = set(takes[model])
        for series_id, size in lengths.items():
            reason = None
            if size < need:
                reason = f"too short for {model}: {int(size)} points, needs {need}"
            elif series_id not in taken and series_id not in spec.excluded.get(model, ()):
                reason = (f"too short to backtest {model}: {int(size)} points, needs {spec.one_window(model)} for "
                          f"one window of {spec.horizon}; left to the models that can be backtested on it")
            elif series_id in taken and series_id in unscored:
                reason = (f"no backtest: too short ({int(size)} points, needs {spec.one_window(model)} for one "
                          f"window of {spec.horizon}); forecast without a backtest score")
            if reason:
                skips.append(Skip(int(series_id), reason, model=model))
    return skips


def _needs_text(needs: dict[str, int]) -> str:
    return ", ".join(f"{model} {need}" for model, need in needs.items())
