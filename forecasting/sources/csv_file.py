"""Series from a CSV file or URL, with column mapping, date format, and for long files (one row per series and
timestamp) either a filter that picks one series or a series-id column that makes one series per value."""

from __future__ import annotations

import functools
import hashlib
import logging
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from pydantic import model_validator

from forecasting.errors import PermanentSourceError, RateLimitError, RetryableSourceError, SourceError
from forecasting.sources import csv_batch
from forecasting.sources.base import (
    FetchResult,
    SeriesSource,
    SourceParams,
    ValueBounds,
    infer_frequency,
    naive_utc,
    to_canonical,
)

__all__ = ["CsvParams", "CsvSource"]

_log = logging.getLogger(__name__)

_RETRYABLE_HTTP = {408, 429, 500, 502, 503, 504}


def _is_url(path: str) -> bool:
    return path.startswith(("http://", "https://", "ftp://"))


class CsvParams(SourceParams):
    path: str
    timestamp_column: str = "ts"
    value_column: str = "value"
    date_format: str | None = None
    filter_column: str | None = None
    filter_value: str | int | float | None = None
    timezone: str | None = None  # timezone of naive timestamps in the file; stored as UTC
    separator: str = ","
    min_value: float | None = None
    max_value: float | None = None

    # a long file: one series per distinct value of this column, named series_prefix + value
    series_column: str | None = None
    series_prefix: str = ""

    @model_validator(mode="after")
    def _filter_pair(self) -> CsvParams:
        if (self.filter_column is None) != (self.filter_value is None):
            raise ValueError("filter_column and filter_value go together")
        if self.series_column is not None and self.filter_column is not None:
            raise ValueError("series_column makes one series per value; it cannot be combined with filter_column")
        if self.series_prefix and self.series_column is None:
            raise ValueError("series_prefix names the series of a series_column; set series_column too")
        return self

    @property
    def is_group(self) -> bool:
        return self.series_column is not None

    @property
    def id_column(self) -> str | None:
        return self.series_column or self.filter_column


@dataclass
class _LongFile:
    """A read CSV file and, per id column, where each id's rows are: the members of a long file are found
    without scanning it once per series."""

    data: pd.DataFrame
    rows_by_id: dict[str, dict[str, object]] = field(default_factory=dict)
    parsed: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def rows(self, column: str) -> dict[str, object]:
        if column not in self.rows_by_id:
            self.rows_by_id[column] = self.data.groupby(column, sort=True, dropna=True, observed=True).indices
        return self.rows_by_id[column]

    def columns(self, params: CsvParams) -> tuple[np.ndarray, np.ndarray]:
        """The timestamps (naive UTC) and values, parsed once for every series of the file."""
        key = (params.timestamp_column, params.date_format, params.timezone, params.value_column)
        if key not in self.parsed:
            raw = self.data[params.timestamp_column]
            stamps = (_categorical_timestamps(raw, params) if isinstance(raw.dtype, pd.CategoricalDtype)
                      else naive_utc(_timestamps(raw, params)))
            self.parsed[key] = (stamps, self.data[params.value_column].to_numpy())
        return self.parsed[key]


def _file_stamp(path: str) -> tuple[int, int] | None:
    """(mtime, size) of a local file: a changed file is read again. None for URLs, which are never cached."""
    if _is_url(path):
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=4)
def _file_sha256(path: str, stamp: tuple[int, int]) -> str | None:
    """The file's content hash; cached while the file is unchanged (the members of a long file share it)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None  # fetch reports the error


def _read(params: CsvParams, series: str) -> _LongFile:
    """The file, read once while it is unchanged (a shard's series of one long file share one read)."""
    stamp = _file_stamp(params.path)
    try:
        if stamp is None:
            return _read_file(params.path, params.separator, params.timestamp_column, params.id_column)
        return _read_cached(params.path, params.separator, params.timestamp_column, params.id_column, stamp)
    except _ReadError as exc:
        raise exc.error_type(exc.message, series=series, source="csv") from exc.__cause__


class _ReadError(Exception):
    """A failed read, named for a series by the caller (the cached read is shared by many series)."""

    def __init__(self, error_type: type[SourceError], message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


# the last files read, by how they were read: an entry is replaced when its file changes (a long file's old
# content must not stay in memory beside the new), and only the newest two are kept
_read_files: dict[tuple, tuple[tuple[int, int], _LongFile]] = {}


def _read_cached(path: str, separator: str, ts_column: str, id_column: str | None,
                 stamp: tuple[int, int]) -> _LongFile:
    key = (path, separator, ts_column, id_column)
    cached = _read_files.pop(key, None)
    if cached is None or cached[0] != stamp:
        cached = None  # dropped before the new read, so two versions of a file are never held at once
        cached = (stamp, _read_file(path, separator, ts_column, id_column))
    _read_files[key] = cached
    while len(_read_files) > 2:
        del _read_files[next(iter(_read_files))]
    return cached[1]


_TEXT_CHUNK_ROWS = 1_000_000


def _read_file(path: str, separator: str, ts_column: str, id_column: str | None) -> _LongFile:
    # values are read as text-or-number exactly as written: validation decides what is acceptable; ids as
    # text, so '007' stays '007'. A long file repeats each id and each date many times: as categories (text,
    # each distinct value held once) it takes a few bytes a row instead of two Python strings
    dtypes = {ts_column: "category", id_column: "category"} if id_column else {ts_column: str}
    try:
        data = pd.read_csv(path, sep=separator, dtype=dtypes)
        for column in (id_column, ts_column) if id_column else ():
            if column in data.columns and not pd.api.types.is_string_dtype(data[column].cat.categories):
                text = _text_categories(path, separator, column)
                if len(text) != len(data):  # a URL that answered differently the second time
                    raise _ReadError(RetryableSourceError, f"{path} changed while it was read")
                data[column] = text
        return _LongFile(data)
    except FileNotFoundError:
        raise _ReadError(PermanentSourceError, f"CSV file not found: {path}") from None
    except urllib.error.HTTPError as exc:
        error_type = RetryableSourceError if exc.code in _RETRYABLE_HTTP else PermanentSourceError
        error_type = RateLimitError if exc.code == 429 else error_type
        raise _ReadError(error_type, f"HTTP {exc.code} fetching {path}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise _ReadError(RetryableSourceError, f"network error fetching {path}: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise _ReadError(PermanentSourceError, f"cannot parse CSV {path}: {exc}") from exc


def _text_categories(path: str, separator: str, column: str) -> pd.Categorical:
    """The column as categories of its text exactly as written.

    When every value of a category column looks like a number, pandas makes its categories numbers: ids 1 and 2
    become integers (no series name can be made of them), '00' and '0' one category 0, and a filter_value of '1'
    matches nothing. Such a column is read again as text, a chunk at a time, so that at most one chunk is ever
    held as Python strings."""
    chunks = pd.read_csv(path, sep=separator, usecols=[column], dtype={column: str}, chunksize=_TEXT_CHUNK_ROWS)
    parts = [pd.Categorical(chunk[column]) for chunk in chunks]
    return union_categoricals(parts) if parts else pd.Categorical([], categories=pd.Index([], dtype=str))


def _timestamps(raw: pd.Series, params: CsvParams, *, iso_only: bool = False) -> pd.Series | None:
    """The parsed column; with ``iso_only``, None unless every value is ISO 8601 (a format guessed over many
    files' values could differ from the one guessed over one file's)."""
    ts = _iso_timestamps(raw) if params.date_format is None else None
    if ts is None and iso_only:
        return None
    if ts is None:
        ts = _parsed_timestamps(raw, params)
    if params.timezone and not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_localize(params.timezone, ambiguous="NaT", nonexistent="NaT")
    return ts


def _categorical_timestamps(raw: pd.Series, params: CsvParams) -> np.ndarray:
    """A long file's timestamps (naive UTC), each distinct text parsed once."""
    if not len(raw.cat.categories):
        return np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[ns]")
    categories = pd.Series(np.asarray(raw.cat.categories, dtype=object))
    parsed = _timestamps(categories, params, iso_only=params.date_format is None)
    if parsed is None:  # a guessed format depends on the column's first value: parse the column as it is
        return naive_utc(_timestamps(pd.Series(raw.to_numpy(dtype=object)), params))
    codes = raw.cat.codes.to_numpy()
    stamps = naive_utc(parsed)[codes]
    stamps[codes < 0] = np.datetime64("NaT")
    return stamps


def _iso_timestamps(raw: pd.Series) -> pd.Series | None:
    """ISO 8601 timestamps, the common case, parsed without guessing a format per file (half the cost of a
    small file's read); None when any value is not ISO 8601 or the offsets are mixed."""
    try:
        return pd.to_datetime(raw, format="ISO8601")
    except (ValueError, TypeError):
        return None


def _parsed_timestamps(raw: pd.Series, params: CsvParams) -> pd.Series:
    try:
        ts = pd.to_datetime(raw, format=params.date_format, errors="coerce")
    except ValueError:  # mixed UTC offsets in one column
        ts = pd.to_datetime(raw, format=params.date_format, errors="coerce", utc=True)
    return ts


class CsvSource(SeriesSource):
    name = "csv"
    params_model = CsvParams

    def prepare_params(self, params: dict, *, base_dir: Path) -> dict:
        path = params.get("path")
        if isinstance(path, str) and not _is_url(path) and not Path(path).expanduser().is_absolute():
            return {**params, "path": str((base_dir / path).resolve())}
        return params

    def fetch(self, params: CsvParams, *, series: str) -> FetchResult:
        if params.series_column is not None:
            raise PermanentSourceError(f"{params.path} holds one series per {params.series_column!r}: fetch its "
                                       "members (the config expands the block into them)", series=series, source="csv")
        prefetched = csv_batch.take(params, _file_stamp(params.path))
        if prefetched is not None:
            frame = to_canonical(prefetched.timestamps, prefetched.values)
            return FetchResult(frame=frame, frequency=infer_frequency(frame["ts"]))
        long_file = _read(params, series)
        _require_columns(long_file.data, params, [params.timestamp_column, params.value_column], series=series)
        timestamps, values = long_file.columns(params)
        if params.filter_column:
            positions = long_file.rows(params.filter_column).get(str(params.filter_value))
            if positions is None:
                raise PermanentSourceError(
                    f"no rows in {params.path} where {params.filter_column} == {params.filter_value!r}",
                    series=series,
                    source="csv",
                )
            timestamps, values = timestamps[positions], values[positions]
        frame = to_canonical(timestamps, values)
        return FetchResult(frame=frame, frequency=infer_frequency(frame["ts"]))

    def prefetch(self, params: Sequence[CsvParams]) -> None:
        parsed = csv_batch.prefetch(params, timestamps=_timestamps, stamp_of=_file_stamp)
        if parsed:
            _log.debug("%d of %d CSV files parsed together", parsed, len(params))

    def fingerprint(self, params: CsvParams) -> str | None:
        stamp = _file_stamp(params.path)
        return None if stamp is None else _file_sha256(params.path, stamp)

    def group_values(self, params: CsvParams, *, series: str) -> list[str] | None:
        if params.series_column is None:
            return None
        long_file = _read(params, series)
        _require_columns(long_file.data, params, [params.timestamp_column, params.value_column], series=series)
        return list(long_file.rows(params.series_column))

    def member_params(self, params: dict, value: str) -> dict:
        member = {k: v for k, v in params.items() if k not in ("series_column", "series_prefix")}
        return {**member, "filter_column": params["series_column"], "filter_value": value}

    def bounds(self, params: CsvParams) -> ValueBounds:
        return ValueBounds(min_value=params.min_value, max_value=params.max_value)


def _require_columns(data: pd.DataFrame, params: CsvParams, columns: list[str], *, series: str) -> None:
    wanted = columns + ([params.id_column] if params.id_column else [])
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        raise PermanentSourceError(
            f"column(s) {', '.join(map(repr, missing))} not in {params.path} "
            f"(columns: {', '.join(map(str, data.columns))})",
            series=series,
            source="csv",
        )
