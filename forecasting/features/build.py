"""Features for the global tree models (LightGBM, scikit-learn) under the recursive one-step-ahead strategy.

THE RULE: the features of row t read y only at rows strictly before t of the same series, and an exogenous
series only at timestamps <= ts of the row ``lag`` steps back. Rows without enough history get NaN (LightGBM
handles it), never values from another series.

Everything works on the flat arrays of the sorted panel. A series is a run of rows, so a lag is a shift with
the first rows of each run blanked, and a rolling statistic is a difference of prefix sums or a running
min/max, with the windows that reach into the previous run blanked. Python loops run only over lags, windows,
exogenous series and series-length classes, never over rows or series.

Recursive prediction: take ``tail_for_prediction(panel, spec)``, append one row per series at the next ts
with y = NaN, call ``build_features`` on that and keep the last row of each series; write the prediction into
y and repeat. The features of the appended row equal those computed from the whole history bit for bit,
except the EWM-based indicators (see ``tail_length``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, TS, Y
from forecasting.frequency import Frequency

__all__ = [
    "ROLLING_STATS",
    "TECHNICAL_FEATURES",
    "FeatureSpec",
    "build_features",
    "feature_names",
    "tail_for_prediction",
    "tail_length",
]

ROLLING_STATS = ("mean", "std", "min", "max")
TECHNICAL_FEATURES = ("tech_sma_ratio_5_20", "tech_rsi_14", "tech_macd", "tech_macd_signal")

_SMA_WINDOWS = (5, 20)
_RSI_ALPHA = 1 / 14  # Wilder's smoothing
_MACD_ALPHAS = (2 / 13, 2 / 27, 2 / 10)  # spans 12, 26 and the signal's 9
# Rows of y each indicator needs before it is defined (NaN before, like min_periods).
_TECH_HISTORY = {"tech_sma_ratio_5_20": 20, "tech_rsi_14": 15, "tech_macd": 26, "tech_macd_signal": 34}
# The EWMs forget their start value as (1 - alpha)^n; keep enough rows that it weighs less than this.
_EWM_FORGET = 1e-10
_TECH_WARMUP = 2 + max(math.ceil(math.log(_EWM_FORGET) / math.log1p(-a)) for a in (_RSI_ALPHA, *_MACD_ALPHAS))

_DATETIME_FIELDS = {"dayofweek": "day_of_week", "dayofmonth": "day"}  # DatetimeIndex attributes


@dataclass(frozen=True)
class FeatureSpec:
    """Which features ``build_features`` makes.

    Args:
        lags: target lags in steps, each >= 1 (``lag_<k>``).
        rolling_windows: window lengths, each >= 2, over y_{t-1}..y_{t-w} (``rolling_<stat>_<w>``). Defaults to ().
        rolling_stats: any of "mean", "std" (sample, ddof=1), "min", "max". Defaults to all four.
        exog_lags: lags in target steps of every exogenous series, each >= 1 (``exog_<name>_lag_<k>``).
            Defaults to ().
        calendar: add the calendar fields of the frequency (``cal_<field>``). Defaults to True.
        technical: add ``TECHNICAL_FEATURES`` computed on the lagged target. Defaults to False.
    """

    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...] = ()
    rolling_stats: tuple[str, ...] = ROLLING_STATS
    exog_lags: tuple[int, ...] = ()
    calendar: bool = True
    technical: bool = False

    def __post_init__(self) -> None:
        for name in ("lags", "rolling_windows", "rolling_stats", "exog_lags"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        for name, minimum in (("lags", 1), ("rolling_windows", 2), ("exog_lags", 1)):
            object.__setattr__(self, name, _checked_ints(name, getattr(self, name), minimum))
        unknown = [s for s in self.rolling_stats if s not in ROLLING_STATS]
        if unknown:
            raise ValueError(f"unknown rolling stat(s) {unknown}; choose from {list(ROLLING_STATS)}")
        if len(set(self.rolling_stats)) != len(self.rolling_stats):
            raise ValueError(f"rolling_stats must not repeat a value, got {list(self.rolling_stats)}")
        if self.rolling_windows and not self.rolling_stats:
            raise ValueError("rolling_stats must not be empty when rolling_windows are given")
        for name in ("calendar", "technical"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")


def _checked_ints(name: str, values: tuple, minimum: int) -> tuple[int, ...]:
    def ok(v: object) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum

    if not all(ok(v) for v in values):
        what = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {list(values)}")
    return tuple(int(v) for v in values)


def feature_names(spec: FeatureSpec, *, freq: str | None, exog_names: tuple[str, ...] = ()) -> list[str]:
    """The columns ``build_features`` returns, in its order.

    Order: ``lag_<k>`` (spec order), ``rolling_<stat>_<w>`` (window-major, spec order), the technical ones,
    ``exog_<name>_lag_<k>`` (names sorted), ``cal_<field>``.
    """
    names = [f"lag_{k}" for k in spec.lags]
    names += [f"rolling_{stat}_{w}" for w in spec.rolling_windows for stat in spec.rolling_stats]
    names += list(TECHNICAL_FEATURES) if spec.technical else []
    names += [f"exog_{e}_lag_{k}" for e in sorted(set(exog_names)) for k in spec.exog_lags]
    names += [f"cal_{f}" for f in _calendar_fields(freq)] if spec.calendar else []
    return names


def tail_length(spec: FeatureSpec) -> int:
    """Rows per series that ``tail_for_prediction`` keeps: enough for the features of one appended row.

    The largest of: 1; every lag and exog lag; ``2 * w - 1`` for the largest rolling window w (20 when
    technical), because rolling sums restart every 2w rows counted back from the series end and the whole
    last block must be there for them to match the full history bit for bit; and, when technical, 313 rows
    for the EWMs behind RSI and MACD. Those never forget their start value completely; after 313 rows it weighs
    less than 1e-10, so the indicators match the full history to about 1e-10 of the series' range (the RSI,
    a ratio, can deviate more when recent moves are tiny compared with that range).
    """
    need = [1, *spec.lags, *spec.exog_lags]
    windows = _all_windows(spec)
    if windows:
        need.append(2 * max(windows) - 1)
    if spec.technical:
        need.append(_TECH_WARMUP)
    return max(need)


def tail_for_prediction(panel: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The last ``tail_length(spec)`` rows of each series (all of a shorter one), with a fresh RangeIndex."""
    if panel.empty:
        return panel.reset_index(drop=True)
    layout = _series_layout(panel)
    return panel.iloc[np.flatnonzero(layout.pos_from_end < tail_length(spec))].reset_index(drop=True)


def build_features(
    panel: pd.DataFrame, spec: FeatureSpec, *, freq: str | None, exog: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Feature matrix of ``panel``: same index, float64 columns ``feature_names(spec, ...)``, nothing else.

    Args:
        panel: series, ts, y sorted by (series, ts) (``forecasting.features.panel``); y may be NaN, as on appended
            future rows, and every window or indicator that holds a NaN is NaN.
        spec: which features.
        freq: pandas alias of the panel's frequency; picks the calendar fields: daily ("D", "B", "C") gives
            dayofweek (Monday 0), dayofmonth, month, weekofyear (ISO); weekly gives weekofyear, month; monthly
            and semi-monthly give month, quarter; quarterly gives quarter; yearly and None give none; hourly
            and finer give hour, dayofweek. Another alias with calendar=True raises ValueError.
        exog: feature series as a panel (series = feature name), at any frequency. Each is aligned to every
            target row as of its ts (the last value at or before it, as ``pd.merge_asof(direction="backward")``;
            NaN before the first), then lagged by each of ``spec.exog_lags`` steps of the target series. The
            last value is carried forward past the end of a feature series, which is what lets recursive
            prediction run beyond the known exogenous data. Defaults to None.

    Technical indicators (on y up to t-1): ``tech_sma_ratio_5_20`` = mean of 5 / mean of 20 (NaN when the
    latter is 0); ``tech_rsi_14`` = 100 * g / (g + l) with g, l Wilder EWMs (alpha 1/14, seeded with the first
    change) of the gains and losses, 50 for a flat history; ``tech_macd`` = EWM12 - EWM26 of y, and
    ``tech_macd_signal`` its EWM9 (spans, adjust=False, seeded with the first value). They are NaN until 20,
    15, 26 and 34 rows of history exist.
    """
    layout = _series_layout(panel)
    exog_series = _exog_series(exog, spec)
    names = feature_names(spec, freq=freq, exog_names=tuple(exog_series))
    out = np.empty((len(panel), len(names)), order="F")  # F order: each column contiguous
    columns = {name: out[:, j] for j, name in enumerate(names)}
    if len(panel):
        y = panel[Y].to_numpy(dtype=np.float64)
        _add_lags(columns, y, spec, layout)
        _add_rolling(columns, y, spec, layout)
        if spec.technical:
            _add_technical(columns, y, layout)
        ts_codes, ts_unique = pd.factorize(_ts_ns(panel[TS]))
        _add_exog(columns, exog_series, spec, layout, ts_codes, ts_unique)
        if spec.calendar:
            _add_calendar(columns, _calendar_fields(freq), ts_codes, ts_unique)
    return pd.DataFrame(out, index=panel.index, columns=names, copy=False)


# --- panel layout -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where each series' run of rows starts, how long it is, and each row's place in its run."""

    starts: np.ndarray
    lengths: np.ndarray
    pos: np.ndarray  # 0 on the first row of a series
    pos_from_end: np.ndarray  # 0 on the last row of a series
    is_start: np.ndarray  # pos == 0

    def head(self, k: int) -> np.ndarray:
        """Indices of the rows with pos < k (the first k rows of every series)."""
        if k * len(self.starts) > len(self.pos):  # a long k: one pass beats a huge index grid
            return np.flatnonzero(self.pos < k)
        offsets = np.arange(k)
        grid = self.starts[:, None] + offsets
        return grid[offsets < self.lengths[:, None]]


def _ts_ns(ts: pd.Series) -> np.ndarray:
    return ts.to_numpy().astype("datetime64[ns]", copy=False).view(np.int64)


def _series_layout(panel: pd.DataFrame) -> _Layout:
    """The layout of a panel sorted by (series, ts); ValueError naming the first place where it is not."""
    missing = [c for c in (SERIES, TS, Y) if c not in panel.columns]
    if missing:
        raise ValueError(f"panel lacks column(s) {missing}")
    names = panel[SERIES].to_numpy()
    n = len(names)
    is_start = np.ones(n, dtype=bool)
    np.not_equal(names[1:], names[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    runs = names[starts]
    bad = np.flatnonzero(~(runs[1:] > runs[:-1]))  # sorted runs also means no series is split in two
    if len(bad):
        raise ValueError(
            f"panel must be sorted by (series, ts); series {runs[bad[0] + 1]!r} comes after {runs[bad[0]]!r}"
        )
    bad = np.flatnonzero((np.diff(_ts_ns(panel[TS])) <= 0) & ~is_start[1:])
    if len(bad):
        row = int(bad[0]) + 1
        raise ValueError(f"panel must be sorted by (series, ts); ts does not increase at row {row} ({names[row]!r})")
    lengths = np.diff(np.append(starts, n))
    pos = np.arange(n) - np.repeat(starts, lengths)
    return _Layout(starts, lengths, pos, np.repeat(lengths, lengths) - 1 - pos, is_start)


def _lag_into(dst: np.ndarray, values: np.ndarray, k: int, layout: _Layout, history: int) -> None:
    """dst[t] = values[t - k] within the series, NaN on the first ``history`` (>= k) rows of every series."""
    dst[:k] = np.nan
    dst[k:] = values[: max(len(values) - k, 0)]
    dst[layout.head(history)] = np.nan


# --- lags and rolling statistics --------------------------------------------------------------------------


def _all_windows(spec: FeatureSpec) -> tuple[int, ...]:
    return spec.rolling_windows + (_SMA_WINDOWS if spec.technical else ())


def _add_lags(columns: dict, y: np.ndarray, spec: FeatureSpec, layout: _Layout) -> None:
    for k in spec.lags:
        _lag_into(columns[f"lag_{k}"], y, k, layout, history=k)


def _add_rolling(columns: dict, y: np.ndarray, spec: FeatureSpec, layout: _Layout) -> None:
    # Each statistic is computed over y[t-w+1..t] and then lagged by one step, so row t sees y[t-w..t-1].
    for w in spec.rolling_windows:
        for stat, values in _window_stats(y, w, spec.rolling_stats, layout).items():
            _lag_into(columns[f"rolling_{stat}_{w}"], values, 1, layout, history=w)


def _window_stats(y: np.ndarray, w: int, stats: tuple[str, ...], layout: _Layout) -> dict[str, np.ndarray]:
    """The requested statistics of every y[t-w+1..t]; NaN where the window holds a NaN."""
    # The min is exact, cheap, and NaN exactly where the window holds a NaN, so it also marks those windows.
    out = {"min": _rolling_extreme(y, w, np.minimum)}
    if "max" in stats or "std" in stats:
        out["max"] = _rolling_extreme(y, w, np.maximum)
    if "mean" in stats:
        out["mean"] = _rolling_sum(y, w) / w  # NaN propagates through the sums
    if "std" in stats:
        _, var = _window_moments(y, layout, w)
        out["std"] = np.sqrt(var)
        out["std"][np.isnan(out["min"])] = np.nan
        out["std"][out["min"] == out["max"]] = 0.0  # constant windows: exactly 0, not rounding noise
    return {stat: out[stat] for stat in stats}


def _rolling_extreme(y: np.ndarray, w: int, pick: np.ufunc) -> np.ndarray:
    """np.minimum or np.maximum over every y[t-w+1..t] (NaN propagates), by doubling: ~log2(w) passes.

    Garbage on the first w - 1 rows of the array; the caller blanks every window reaching before its series.
    """
    span, acc = 1, y  # acc[t] = pick over y[t-span+1..t]
    while 2 * span <= w:
        wider = acc.copy()
        pick(acc[span:], acc[:-span], out=wider[span:])
        span, acc = 2 * span, wider
    if span < w:  # two overlapping spans cover the window exactly
        rest = w - span
        wider = acc.copy()
        pick(acc[rest:], acc[:-rest], out=wider[rest:])
        acc = wider
    return acc.copy() if acc is y else acc


def _rolling_sum(y: np.ndarray, w: int) -> np.ndarray:
    """Sum of every y[t-w+1..t] by doubling: spans of 1, 2, 4, ... values added pairwise, then the spans of
    w's binary digits combined, about 2·log2(w) vector additions.

    Each sum depends only on its own window's values, in a fixed order, so a series' tail gives bit-for-bit
    the sums of the full history, and pairwise addition keeps the rounding error tiny. Garbage on the first
    w - 1 rows of the array; the caller blanks every window reaching before its series.
    """
    spans = {1: y}
    span = 1
    while 2 * span <= w:
        shorter = spans[span]
        wider = shorter.copy()
        np.add(shorter[span:], shorter[:-span], out=wider[span:])
        span *= 2
        spans[span] = wider
    total, covered = None, 0
    for size in sorted(spans, reverse=True):
        if not w & size:
            continue
        part = spans[size]
        if total is None:
            total = part.copy()
        else:  # add the span ending ``covered`` rows earlier
            np.add(total[covered:], part[:-covered], out=total[covered:])
        covered += size
    return total


def _window_moments(y: np.ndarray, layout: _Layout, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample variance of every y[t-w+1..t] from short prefix sums (garbage where it holds a NaN).

    Rows are cut into blocks of 2w counted back from each series' end, and into (series, block) segments.
    Each segment subtracts its first value (``ref``) and accumulates d = y - ref and d² from zero, so no sum
    spans more than 2w nearby values: the variance (sum d² - (sum d)² / w) / (w - 1) keeps its precision on
    large levels (values around 1e6) and on trends. A window's sums depend only on its own series, on rows
    not after it, and on its distance to the series end, which ``tail_for_prediction`` preserves. A second
    tiling shifted by w holds every window that straddles a block edge of the first. Windows reaching before
    the series start come out as garbage and are blanked by the caller.
    """
    fits, s1, s2, ref = _tiling_sums(y, layout, w, phase=0)
    _, s1_other, s2_other, ref_other = _tiling_sums(y, layout, w, phase=w)
    s1 = np.where(fits, s1, s1_other)
    s2 = np.where(fits, s2, s2_other)
    ref = np.where(fits, ref, ref_other)
    # (ref * w + s1) / w rather than ref + s1 / w: exact whenever the window's sum is, e.g. on integers
    return (ref * w + s1) / w, np.maximum(s2 - s1 * s1 / w, 0.0) / (w - 1)


def _tiling_sums(y: np.ndarray, layout: _Layout, w: int, phase: int) -> tuple[np.ndarray, ...]:
    """For one tiling into blocks of 2w: (window fits its block, sum d, sum d², ref) for every row's window."""
    size = 2 * w
    offset = layout.pos_from_end + phase
    np.remainder(offset, size, out=offset)
    np.subtract(size - 1, offset, out=offset)  # 0 on a block's first row
    first = offset == 0
    first |= layout.is_start
    segment = np.cumsum(first)
    segment -= 1
    n_segments = int(segment[-1]) + 1
    ref = np.nan_to_num(y[first])[segment]  # a NaN ref would poison its segment; 0 only costs precision
    d = y - ref
    d[np.isnan(d)] = 0.0  # windows holding a NaN are blanked by the caller; keep the sums of the rest finite
    fits = offset >= w - 1
    cell = offset  # reuse the buffer: table row 0 stays 0, the empty prefix of every segment
    cell += 1
    cell *= n_segments
    cell += segment
    tables = np.zeros((2, (size + 1) * n_segments))
    tables[0][cell] = d
    tables[1][cell] = np.square(d, out=d)
    np.cumsum(tables.reshape(2, size + 1, n_segments), axis=1, out=tables.reshape(2, size + 1, n_segments))
    start = np.maximum(cell - w * n_segments, 0)  # a window that leaves its block reads garbage, in bounds
    return fits, tables[0][cell] - tables[0][start], tables[1][cell] - tables[1][start], ref


# --- technical indicators ---------------------------------------------------------------------------------


class _Ragged:
    """The series as rows of 2-D grids, one grid per length class (at most 2x padding), for recursive filters.

    Each series is filtered along its own row, so its result never depends on another series or on padding.
    """

    def __init__(self, layout: _Layout) -> None:
        length_class = np.ceil(np.log2(layout.lengths)).astype(np.int64)
        self.parts = []
        for c in np.unique(length_class):
            members = np.flatnonzero(length_class == c)
            lengths = layout.lengths[members]
            rows = np.repeat(layout.starts[members] - (np.cumsum(lengths) - lengths), lengths)
            rows += np.arange(len(rows))
            width = int(lengths.max())
            cells = np.repeat(np.arange(len(members)) * width, lengths) + layout.pos[rows]
            self.parts.append((rows, cells, (len(members), width)))

    def ewm(self, x: np.ndarray, alpha: float) -> np.ndarray:
        """s_0 = x_0, s_t = (1 - alpha) s_{t-1} + alpha x_t per series (pandas ewm(alpha, adjust=False))."""
        from scipy.signal import lfilter  # not at import: reading a config imports the models, which import this

        out = np.empty_like(x)
        for rows, cells, shape in self.parts:
            grid = np.zeros(shape)
            grid.flat[cells] = x[rows]
            smooth, _ = lfilter([alpha], [1.0, alpha - 1.0], grid, axis=1, zi=(1 - alpha) * grid[:, :1])
            out[rows] = smooth.flat[cells]
        return out


def _add_technical(columns: dict, y: np.ndarray, layout: _Layout) -> None:
    ragged = _Ragged(layout)
    fast, slow = (_window_stats(y, w, ("mean",), layout)["mean"] for w in _SMA_WINDOWS)
    ratio = np.full_like(fast, np.nan)
    np.divide(fast, slow, out=ratio, where=slow != 0)
    macd = ragged.ewm(y, _MACD_ALPHAS[0]) - ragged.ewm(y, _MACD_ALPHAS[1])
    values = {
        "tech_sma_ratio_5_20": ratio,
        "tech_rsi_14": _rsi(y, layout, ragged),
        "tech_macd": macd,
        "tech_macd_signal": ragged.ewm(macd, _MACD_ALPHAS[2]),
    }
    for name, v in values.items():  # indicators of y[..t], lagged so that row t sees y[..t-1]
        _lag_into(columns[name], v, 1, layout, history=_TECH_HISTORY[name])


def _rsi(y: np.ndarray, layout: _Layout, ragged: _Ragged) -> np.ndarray:
    change = np.empty_like(y)
    change[1:] = y[1:] - y[:-1]
    # A series' first row has no change; giving it the second row's makes the EWM start at the first change.
    starts = layout.starts
    change[starts] = np.where(layout.lengths > 1, change[np.minimum(starts + 1, len(y) - 1)], np.nan)
    gain = ragged.ewm(np.maximum(change, 0.0), _RSI_ALPHA)
    loss = ragged.ewm(np.maximum(-change, 0.0), _RSI_ALPHA)
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = 100.0 * gain / (gain + loss)
    rsi[(gain == 0) & (loss == 0)] = 50.0
    return rsi


# --- exogenous series and calendar ------------------------------------------------------------------------


def _exog_series(exog: pd.DataFrame | None, spec: FeatureSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Feature name -> (ts as int64 ns, values), names sorted; ValueError on an unusable exog."""
    if exog is None:
        return {}
    if not spec.exog_lags:
        raise ValueError("exog was given but spec.exog_lags is empty; set exog_lags, e.g. (1,)")
    missing = [c for c in (SERIES, TS, Y) if c not in exog.columns]
    if missing:
        raise ValueError(f"exog lacks column(s) {missing}")
    series = {}
    for name, group in exog.groupby(SERIES, sort=True):
        ts = _ts_ns(group[TS])
        if (np.diff(ts) <= 0).any():
            raise ValueError(f"exog series {name!r} must have strictly increasing ts")
        series[name] = (ts, group[Y].to_numpy(dtype=np.float64))
    return series


def _add_exog(
    columns: dict, exog_series: dict, spec: FeatureSpec, layout: _Layout, codes: np.ndarray, unique: np.ndarray
) -> None:
    for name, (ts, values) in exog_series.items():
        last = np.searchsorted(ts, unique, side="right") - 1  # as-of backward on the distinct target ts
        aligned = np.where(last >= 0, values[np.maximum(last, 0)], np.nan)[codes]
        for k in spec.exog_lags:
            _lag_into(columns[f"exog_{name}_lag_{k}"], aligned, k, layout, history=k)


def _calendar_fields(freq: str | None) -> tuple[str, ...]:
    return Frequency.parse(freq).calendar_fields if freq is not None else ()


def _add_calendar(columns: dict, fields: tuple[str, ...], codes: np.ndarray, unique: np.ndarray) -> None:
    stamps = pd.DatetimeIndex(unique.view("datetime64[ns]"))  # the distinct ts only, then spread by code
    for field in fields:
        if field == "weekofyear":
            values = stamps.isocalendar()["week"].to_numpy(dtype=np.float64)
        else:
            values = np.asarray(getattr(stamps, _DATETIME_FIELDS.get(field, field)), dtype=np.float64)
        columns[f"cal_{field}"][:] = values[codes]
