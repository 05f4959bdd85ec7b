"""Target transforms applied per series before a global model sees the data, inverted on its forecasts.

Differencing removes each series' level and trend, seasonal differencing a stable seasonal pattern; local
scaling puts all series on one scale, which is what lets one global model learn from series of very different
magnitudes (mlforecast's recipe).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, STEP, YHAT, Y

__all__ = ["Difference", "LocalStandardScaler", "SeasonalDifference", "TargetTransform", "apply_inverse",
           "make_transforms"]


class TargetTransform:
    name: str

    def fit_transform(self, panel: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def inverse(self, forecasts: pd.DataFrame) -> pd.DataFrame:
        """Undo the transform on forecasts (columns series, step, yhat; sorted by series, step)."""
        raise NotImplementedError


class Difference(TargetTransform):
    """y_t - y_{t-1}; the first row of each series is dropped (it has no predecessor)."""

    name = "diff"

    def fit_transform(self, panel: pd.DataFrame) -> pd.DataFrame:
        self.last_ = panel.groupby(SERIES, sort=True)[Y].last()
        out = panel.assign(**{Y: panel.groupby(SERIES, sort=False)[Y].diff()})
        return out.dropna(subset=[Y]).reset_index(drop=True)

    def inverse(self, forecasts: pd.DataFrame) -> pd.DataFrame:
        cumulative = forecasts.groupby(SERIES, sort=False)[YHAT].cumsum()
        return forecasts.assign(**{YHAT: cumulative + forecasts[SERIES].map(self.last_).to_numpy()})


class SeasonalDifference(TargetTransform):
    """y_t - y_{t-m} with m the frequency's seasonal period: removes a stable seasonal pattern (and the level),
    which lets a global model see what changes from one season to the next. The first m rows of each series
    are dropped; with m = 1 it is the plain difference."""

    name = "sdiff"

    def __init__(self, season: int = 1) -> None:
        self.season = max(1, int(season))

    def fit_transform(self, panel: pd.DataFrame) -> pd.DataFrame:
        m = self.season
        # the last m values per series: what the first m forecast steps are added to
        self.tail_ = {key: part.to_numpy(dtype="float64")[-m:] for key, part in panel.groupby(SERIES, sort=True)[Y]}
        out = panel.assign(**{Y: panel.groupby(SERIES, sort=False)[Y].diff(m)})
        return out.dropna(subset=[Y]).reset_index(drop=True)

    def inverse(self, forecasts: pd.DataFrame) -> pd.DataFrame:
        m = self.season
        # step h adds to the value m steps earlier: a cumulative sum within each phase (h - 1) mod m, on top of
        # the stored value of that phase
        phase = (forecasts[STEP].to_numpy() - 1) % m
        summed = forecasts.assign(_phase=phase).groupby([SERIES, "_phase"], sort=False)[YHAT].cumsum().to_numpy()
        base = np.array([_phase_value(self.tail_[key], m, k) for key, k in zip(forecasts[SERIES], phase, strict=True)])
        return forecasts.assign(**{YHAT: summed + base})


def _phase_value(tail: np.ndarray, m: int, phase: int) -> float:
    """The stored value that forecast steps of this phase build on (the series' value one season before)."""
    position = phase - m  # from the end: phase 0 of a full season is tail[-m]
    return float(tail[position]) if -position <= len(tail) else float("nan")


class LocalStandardScaler(TargetTransform):
    """(y - mean) / std per series; a constant series gets std 1 so it stays finite."""

    name = "scale"

    def fit_transform(self, panel: pd.DataFrame) -> pd.DataFrame:
        grouped = panel.groupby(SERIES, sort=True)[Y]
        self.mean_ = grouped.mean()
        std = grouped.std(ddof=0)
        self.std_ = std.where(std > 0, 1.0)
        mean = panel[SERIES].map(self.mean_).to_numpy()
        scale = panel[SERIES].map(self.std_).to_numpy()
        return panel.assign(**{Y: (panel[Y].to_numpy() - mean) / scale})

    def inverse(self, forecasts: pd.DataFrame) -> pd.DataFrame:
        mean = forecasts[SERIES].map(self.mean_).to_numpy()
        scale = forecasts[SERIES].map(self.std_).to_numpy()
        return forecasts.assign(**{YHAT: forecasts[YHAT].to_numpy() * scale + mean})


_TRANSFORMS = {"diff": Difference, "sdiff": SeasonalDifference, "scale": LocalStandardScaler}


def make_transforms(names: tuple[str, ...] | list[str], *, season: int = 1) -> list[TargetTransform]:
    """The transforms named, in order; ``season`` is the seasonal period ``sdiff`` differences over."""
    unknown = [n for n in names if n not in _TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown target transform(s) {unknown}; known: {sorted(_TRANSFORMS)}")
    return [SeasonalDifference(season) if n == "sdiff" else _TRANSFORMS[n]() for n in names]


def apply_inverse(transforms: list[TargetTransform], forecasts: pd.DataFrame) -> pd.DataFrame:
    """Invert in reverse order of application; forecasts must be sorted by series, step."""
    ordered = forecasts.sort_values([SERIES, STEP], kind="stable").reset_index(drop=True)
    for transform in reversed(transforms):
        ordered = transform.inverse(ordered)
    return ordered

