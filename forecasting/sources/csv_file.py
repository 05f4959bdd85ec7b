"""Series from a CSV file or URL, with column mapping, date format and an optional filter for long files."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pandas as pd
from pydantic import model_validator

from forecasting.errors import PermanentSourceError, RateLimitError, RetryableSourceError
from forecasting.sources.base import (
    FetchResult,
    SeriesSource,
    SourceParams,
    ValueBounds,
    infer_frequency,
    to_canonical,
)

__all__ = ["CsvParams", "CsvSource"]

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

    @model_validator(mode="after")
    def _filter_pair(self) -> CsvParams:
        if (self.filter_column is None) != (self.filter_value is None):
            raise ValueError("filter_column and filter_value go together")
        return self


def _read(params: CsvParams, series: str) -> pd.DataFrame:
    err = {"series": series, "source": "csv"}
    try:
        # values are read as text-or-number exactly as written: validation decides what is acceptable
        return pd.read_csv(params.path, sep=params.separator, dtype={params.timestamp_column: str})
    except FileNotFoundError:
        raise PermanentSourceError(f"CSV file not found: {params.path}", **err) from None
    except urllib.error.HTTPError as exc:
        error_type = RetryableSourceError if exc.code in _RETRYABLE_HTTP else PermanentSourceError
        error_type = RateLimitError if exc.code == 429 else error_type
        raise error_type(f"HTTP {exc.code} fetching {params.path}", **err) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise RetryableSourceError(f"network error fetching {params.path}: {exc}", **err) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PermanentSourceError(f"cannot parse CSV {params.path}: {exc}", **err) from exc


def _timestamps(raw: pd.Series, params: CsvParams) -> pd.Series:
    try:
        ts = pd.to_datetime(raw, format=params.date_format, errors="coerce")
    except ValueError:  # mixed UTC offsets in one column
        ts = pd.to_datetime(raw, format=params.date_format, errors="coerce", utc=True)
    if params.timezone and not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_localize(params.timezone, ambiguous="NaT", nonexistent="NaT")
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
        data = _read(params, series)
        wanted = [params.timestamp_column, params.value_column] + (
            [params.filter_column] if params.filter_column else []
        )
        missing = [c for c in wanted if c not in data.columns]
        if missing:
            raise PermanentSourceError(
                f"column(s) {', '.join(map(repr, missing))} not in {params.path} "
                f"(columns: {', '.join(map(str, data.columns))})",
                series=series,
                source="csv",
            )
        if params.filter_column:
            data = data[data[params.filter_column].astype(str) == str(params.filter_value)]
            if data.empty:
                raise PermanentSourceError(
                    f"no rows in {params.path} where {params.filter_column} == {params.filter_value!r}",
                    series=series,
                    source="csv",
                )
        frame = to_canonical(_timestamps(data[params.timestamp_column], params), data[params.value_column])
        return FetchResult(frame=frame, frequency=infer_frequency(frame["ts"]))

    def bounds(self, params: CsvParams) -> ValueBounds:
        return ValueBounds(min_value=params.min_value, max_value=params.max_value)
