"""The contract every source fulfils: parameters in, one canonical (ts, value) frame out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

__all__ = [
    "TS",
    "VALUE",
    "SourceParams",
    "SeriesSource",
    "FetchResult",
    "FrequencyChange",
    "ValueBounds",
    "frequency_change",
    "infer_frequency",
    "naive_utc",
    "to_canonical",
]

TS = "ts"
VALUE = "value"


class SourceParams(BaseModel):
    """Base for each source's parameter model: unknown keys are configuration errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def is_group(self) -> bool:
        """Whether these parameters stand for many series (see ``SeriesSource.group_values``)."""
        return False


@dataclass(frozen=True)
class ValueBounds:
    """Plausible value range of a source, checked by validation before anything is stored."""

    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False  # prices must be > 0, volumes >= 0


@dataclass(frozen=True)
class FetchResult:
    """One downloaded series.

    ``frame`` has columns ``ts`` (naive UTC datetime64) and ``value``; rows sorted by ts. Values are
    left as the source delivered them (validation, not the source, decides whether they are numeric).
    """

    frame: pd.DataFrame
    frequency: str | None = None
    unit: str | None = None


class SeriesSource:
    """A registered source. Subclasses set ``name`` and ``params_model`` and implement ``fetch``."""

    name: ClassVar[str]
    params_model: ClassVar[type[SourceParams]]

    def fetch(self, params: SourceParams, *, series: str) -> FetchResult:
        raise NotImplementedError

    def bounds(self, params: SourceParams) -> ValueBounds:
        return ValueBounds()

    def prepare_params(self, params: dict, *, base_dir: Path) -> dict:
        """Adjust raw config parameters before validation (e.g. make file paths config-relative)."""
        return params

    def prefetch(self, params: Sequence[SourceParams]) -> None:
        """Get ready to fetch all of ``params`` (a batch) cheaply, e.g. by reading their files in one pass. An
        optimisation only: ``fetch`` must give the same answer, and its errors, without it."""

    def fingerprint(self, params: SourceParams) -> str | None:
        """A hash of the raw answer ``fetch`` would parse, when it can be had much more cheaply than fetching
        (a local file's bytes); None when it cannot."""
        return None

    def group_values(self, params: SourceParams, *, series: str) -> list[str] | None:
        """The member values of a config block that yields one series per value (a long CSV file with a
        series-id column), or None for a block that is one series."""
        return None

    def member_params(self, params: dict, value: str) -> dict:
        """The parameters of the group member ``value``, a series of its own."""
        raise NotImplementedError(f"source {self.name!r} has no series groups")


def to_canonical(timestamps: pd.Series | pd.Index | np.ndarray,
                 values: pd.Series | pd.Index | np.ndarray) -> pd.DataFrame:
    """Build the canonical frame: timestamps as naive UTC (tz-aware ones converted), sorted.

    Unparseable timestamps become NaT so validation can report them rather than the source crashing.
    """
    stamps = naive_utc(timestamps)
    values = values if isinstance(values, np.ndarray) else pd.Series(values).to_numpy()
    frame = pd.DataFrame({TS: stamps, VALUE: values}, copy=False)
    if len(stamps) < 2 or (stamps[1:] > stamps[:-1]).all():  # already sorted, as most files are (NaT compares False)
        return frame
    return frame.sort_values(TS, kind="stable", na_position="last").reset_index(drop=True)


def naive_utc(timestamps: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Timestamps as naive UTC datetime64[ns] (tz-aware ones converted, text parsed, unparseable as NaT)."""
    if isinstance(timestamps, np.ndarray) and timestamps.dtype.kind == "M":  # already naive (a batch's parse)
        return timestamps.astype("datetime64[ns]", copy=False)
    ts = pd.Series(timestamps)
    if not pd.api.types.is_datetime64_any_dtype(ts.dtype):
        ts = pd.to_datetime(ts, errors="coerce")
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy(dtype="datetime64[ns]")


def _infer(clean: pd.DatetimeIndex) -> str | None:
    try:
        try:
            with pd.option_context("future.infer_freq_returns_offset", True):
                offset = pd.infer_freq(clean)
        except pd.errors.OptionError:  # pandas before 3.1 has no such option and returns a string
            offset = pd.infer_freq(clean)
    except (TypeError, ValueError):
        return None
    # pandas 3 returns an offset object (a string before); store the alias
    return getattr(offset, "freqstr", offset)


_FIXED_STEPS = {86_400: "D", 3_600: "h", 60: "min", 1: "s"}  # seconds per step -> alias


def _fixed_step_alias(timestamps: pd.Series) -> str | None:
    """The alias of sorted timestamps one whole day, hour, minute or second apart, without pandas' general
    inference (the common case, at a tenth of its cost); None for anything else."""
    if len(timestamps) < 3 or not pd.api.types.is_datetime64_any_dtype(timestamps.dtype):
        return None
    # numpy, not pandas, from here: a series' share of a batch of thousands is counted in microseconds
    raw = timestamps.to_numpy()
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind == "M":
        if np.isnat(raw).any():
            return None
        stamps = raw.astype("datetime64[s]").astype("int64")
    else:  # tz-aware
        if timestamps.isna().any():
            return None
        stamps = timestamps.to_numpy(dtype="datetime64[s]").astype("int64")
    steps = np.diff(stamps)
    step = int(steps[0])
    if step not in _FIXED_STEPS or not (steps == step).all():
        return None
    return _FIXED_STEPS[step]


def infer_frequency(timestamps: pd.Series) -> str | None:
    """The pandas frequency alias of the timestamps, or None when irregular or too short.

    Gaps do not make a series irregular: when the whole index has no frequency, the longest run of steps no
    longer than about the modal step gives one, and it counts if every timestamp lies on that grid (a daily
    series missing two weeks is daily, with 14 missing timestamps that modeling fills; weekdays only over
    several weeks, as on a trading calendar with holidays, are business days).
    """
    fixed = _fixed_step_alias(timestamps)
    if fixed is not None:
        return fixed
    clean = pd.DatetimeIndex(timestamps.dropna().drop_duplicates().sort_values())
    if len(clean) < 3:
        return None
    whole = _infer(clean)
    if whole is not None:
        return whole
    steps = np.diff(clean.asi8)
    modal = pd.Series(steps).mode().iloc[0]
    breaks = np.flatnonzero(steps > 1.5 * modal)  # a gap: more than half a step beyond the usual
    bounds = np.r_[0, breaks + 1, len(clean)]
    start, stop = max(zip(bounds[:-1], bounds[1:], strict=True), key=lambda b: b[1] - b[0])
    if stop - start < 3:
        return None
    alias = _infer(clean[start:stop])
    if alias is None:
        return None
    if alias == "D" and (clean.day_of_week < 5).all() and clean[-1] - clean[0] >= pd.Timedelta(days=7):
        alias = "B"  # weekdays only, over weeks: business days (a trading calendar with its holidays)
    grid = pd.date_range(clean[0], clean[-1], freq=alias)
    return alias if clean.isin(grid).all() else None


@dataclass(frozen=True)
class FrequencyChange:
    """Where a series' timestamps leave one regular grid for another: ``before`` up to ``last_before``, ``after``
    from ``first_after`` (pandas aliases)."""

    before: str
    after: str
    last_before: pd.Timestamp
    first_after: pd.Timestamp


def frequency_change(timestamps: pd.Series) -> FrequencyChange | None:
    """Where the timestamps change frequency (daily, then monthly), or None.

    ``infer_frequency`` takes monthly points after daily ones for a daily series with gaps: each lies on the
    daily grid. A gap is one step unlike the usual; a change is a stretch of consecutive such steps whose points
    (three or more) lie on a grid of their own, of another base than the points next to them (every other week
    for a while is a weekly series with gaps, not a change).
    """
    if _fixed_step_alias(timestamps) is not None:
        return None  # one step all along: the common case, at no further cost
    clean = pd.DatetimeIndex(timestamps.dropna().drop_duplicates().sort_values())
    if len(clean) < 6:
        return None
    steps = np.diff(clean.asi8)
    values, counts = np.unique(steps, return_counts=True)
    usual = values[counts.argmax()]
    unusual = (steps > 1.5 * usual) | (1.5 * steps < usual)
    edges = np.flatnonzero(np.diff(np.r_[False, unusual, False].astype(np.int8)))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):  # steps start..stop-1 are unusual
        inside, before, after = clean[start + 1:stop + 1], clean[:start + 1], clean[stop + 1:]
        if len(inside) < 3 or (len(before) < 3 and len(after) < 3):
            continue
        inside_alias = infer_frequency(pd.Series(inside))
        if len(before) >= 3:
            first, second = (infer_frequency(pd.Series(before)), before[-1]), (inside_alias, inside[0])
        else:  # the series starts with the stretch
            first, second = (inside_alias, inside[-1]), (infer_frequency(pd.Series(after)), after[0])
        if first[0] and second[0] and _base(first[0]) != _base(second[0]):
            return FrequencyChange(before=first[0], after=second[0], last_before=first[1], first_after=second[1])
    return None


def _base(alias: str) -> str:
    """The alias without its multiple: 2W-SUN and W-SUN are one grid, with and without gaps."""
    return pd.tseries.frequencies.to_offset(alias).base.freqstr
