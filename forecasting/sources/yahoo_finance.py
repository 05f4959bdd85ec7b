"""Daily prices or volume of one ticker from Yahoo Finance, downloaded with yfinance.

yfinance hides most failures by default (it logs them and returns an empty frame), which would make a network
blip look like an unknown ticker. Fetches therefore run with ``yfinance.config.debug.hide_exceptions`` off so every
failure arrives as an exception that can be sorted into retryable and permanent.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from forecasting.errors import PermanentSourceError, RateLimitError, RetryableSourceError, SourceError
from forecasting.sources.base import (
    TS,
    FetchResult,
    SeriesSource,
    SourceParams,
    ValueBounds,
    infer_frequency,
    to_canonical,
)

__all__ = ["CACHE_DIR_ENV", "YahooFinanceParams", "YahooFinanceSource", "default_cache_dir"]

NAME = "yahoo_finance"
CACHE_DIR_ENV = "FORECASTING_YFINANCE_CACHE_DIR"

_COLUMNS = {
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "adj_close": "Adj Close",
    "volume": "Volume",
}
# yfinance's valid ranges ("5d", "1mo", "5y", "ytd", "max") plus its custom "<n>d|wk|mo|y" format.
_PERIOD_PATTERN = r"^([1-9]\d*(d|wk|mo|y)|ytd|max)$"

# yfinance keeps process-wide state (config flags, one shared HTTP session), so fetches take turns.
_YF_LOCK = threading.Lock()
_cache_dir_in_use: str | None = None


class YahooFinanceParams(SourceParams):
    """One ticker and one column of its daily bars, over either a period or a start/end window."""

    ticker: str = Field(min_length=1, pattern=r"^\S+$")  # Yahoo symbol: "AAPL", "SAP.DE", "^GSPC", "BTC-USD"
    field: Literal["open", "high", "low", "close", "adj_close", "volume"] = "adj_close"
    period: str | None = Field(default=None, pattern=_PERIOD_PATTERN)  # "max" when no start is given
    start: date | None = None  # first day, exchange-local
    end: date | None = None  # day after the last one (exclusive, as in yfinance)
    timeout: float = Field(default=30.0, gt=0)  # seconds per HTTP call

    @model_validator(mode="after")
    def _one_window(self) -> Self:
        if self.period is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either period or start/end, not both")
        if self.end is not None and self.start is None:
            raise ValueError("end needs a start")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def window(self) -> dict[str, Any]:
        """The ``history()`` arguments that select the requested days."""
        if self.start is not None:
            return {"start": self.start, "end": self.end}
        return {"period": self.period or "max"}

    def describe_window(self) -> str:
        if self.start is not None:
            return f"{self.start} to {self.end or 'today'}"
        return f"period {self.period or 'max'}"


def default_cache_dir() -> Path:
    """Where yfinance keeps its timezone and cookie caches: ``$FORECASTING_YFINANCE_CACHE_DIR`` or the temp dir.

    yfinance's own default is under the home directory, which is read-only on many workers.
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "forecasting-yfinance"


class YahooFinanceSource(SeriesSource):
    """Daily bars of one ticker; timestamps are the exchange-local trading dates (naive midnight)."""

    name = NAME
    params_model = YahooFinanceParams

    def __init__(
        self,
        *,
        cache_dir: str | Path | None = None,
        session_factory: Callable[[], Any] | None = None,
        clock: Callable[[], pd.Timestamp] | None = None,
    ) -> None:
        # session_factory lets tests hand yfinance a plain requests.Session; None keeps yfinance's
        # curl_cffi session, which is the one Yahoo accepts.
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._session_factory = session_factory
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))

    def fetch(self, params: SourceParams, *, series: str) -> FetchResult:
        p = _check_params(params)
        with _YF_LOCK:
            _use_cache_dir(self._cache_dir or default_cache_dir())
            try:
                with _exceptions_raised():
                    bars, meta = self._download(p)
            except Exception as exc:
                error = _classify(exc, p, series)
                if error is None:
                    raise
                raise error from exc
        frame = _to_frame(bars, meta, p, series, now=self._clock())
        unit = "shares" if p.field == "volume" else (meta.get("currency") or "price")
        return FetchResult(frame=frame, frequency=_daily_frequency(frame[TS]), unit=unit)

    def bounds(self, params: SourceParams) -> ValueBounds:
        if _check_params(params).field == "volume":
            return ValueBounds(min_value=0)
        return ValueBounds(min_value=0, strict_min=True)

    def _download(self, p: YahooFinanceParams) -> tuple[pd.DataFrame, dict[str, Any]]:
        session = self._session_factory() if self._session_factory is not None else None
        ticker = _yf().Ticker(p.ticker, session=session)
        # auto_adjust=False keeps both Close and Adj Close; actions=False drops dividend/split columns.
        bars = ticker.history(interval="1d", auto_adjust=False, actions=False, timeout=p.timeout, **p.window())
        return bars, _metadata(ticker.history_metadata)


def _check_params(params: SourceParams) -> YahooFinanceParams:
    if not isinstance(params, YahooFinanceParams):
        raise TypeError(f"{NAME} needs YahooFinanceParams, got {type(params).__name__}")
    return params


def _use_cache_dir(path: Path) -> None:
    """Point yfinance's sqlite caches at ``path`` before first use: a cache it already opened keeps its file."""
    global _cache_dir_in_use
    wanted = str(path)
    if wanted != _cache_dir_in_use:
        _yf().set_tz_cache_location(wanted)  # sets the timezone, cookie and ISIN caches together
        _cache_dir_in_use = wanted


def _yf():
    """yfinance, imported on the first download: reading a config that names this source must not load it."""
    import yfinance

    return yfinance


@contextmanager
def _exceptions_raised() -> Iterator[None]:
    """Make yfinance raise instead of logging and returning an empty frame (see the module docstring)."""
    previous = _yf().config.debug.hide_exceptions
    _yf().config.debug.hide_exceptions = False
    try:
        yield
    finally:
        _yf().config.debug.hide_exceptions = previous


def _metadata(history_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata keys we use; reading others (tradingPeriods) would trigger another download."""
    return {key: history_metadata.get(key) for key in ("currency", "currentTradingPeriod")}


def _classify(exc: Exception, p: YahooFinanceParams, series: str) -> SourceError | None:
    """Map yfinance and HTTP failures to source errors; None leaves an unexpected error untouched."""
    verdict = _verdict(exc, p)
    if verdict is None:
        return None
    retryable, message = verdict
    error_class = RetryableSourceError if retryable else PermanentSourceError
    from yfinance.exceptions import YFRateLimitError

    if isinstance(exc, YFRateLimitError) or _http_status(exc) == 429:
        error_class = RateLimitError
    return error_class(message, series=series, source=NAME)


def _verdict(exc: Exception, p: YahooFinanceParams) -> tuple[bool, str] | None:
    """(retryable, message) for a failure we understand."""
    from yfinance.exceptions import YFDataException, YFInvalidPeriodError, YFRateLimitError, YFTickerMissingError

    ticker = p.ticker
    status = _http_status(exc)
    if isinstance(exc, YFRateLimitError) or status == 429:
        return True, f"Yahoo Finance rate-limited the request for ticker {ticker!r}; retry later"
    if isinstance(exc, YFTickerMissingError):
        reason = " ".join(str(exc.rationale).split())  # yfinance's text carries stray double spaces
        return False, f"Yahoo Finance has no data for ticker {ticker!r} (unknown or delisted?): {reason}"
    if isinstance(exc, YFInvalidPeriodError):
        return False, f"Yahoo Finance rejected period {p.period!r} for ticker {ticker!r}; valid: {exc.valid_ranges}"
    if status == 404:
        return False, f"Yahoo Finance knows no ticker {ticker!r} (HTTP 404)"
    if status is not None and status >= 500:
        return True, f"Yahoo Finance answered HTTP {status} for ticker {ticker!r}; retry later"
    if status is not None and status >= 400:
        return False, f"Yahoo Finance rejected the request for ticker {ticker!r} (HTTP {status})"
    if isinstance(exc, YFDataException) and "CURRENTLY DOWN" in str(exc):
        return True, f"Yahoo Finance is down (maintenance page) for ticker {ticker!r}; retry later"
    if isinstance(exc, OSError | json.JSONDecodeError):
        # requests' and curl_cffi's errors are OSErrors; a page that is not JSON is Yahoo under load.
        return True, f"network error talking to Yahoo Finance for ticker {ticker!r}: {type(exc).__name__}: {exc}"
    return None


def _http_status(exc: Exception) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _to_frame(
    bars: pd.DataFrame, meta: Mapping[str, Any], p: YahooFinanceParams, series: str, *, now: pd.Timestamp
) -> pd.DataFrame:
    column = _COLUMNS[p.field]
    if bars.empty or column not in bars.columns:
        raise PermanentSourceError(
            f"Yahoo Finance returned no rows for ticker {p.ticker!r} ({p.describe_window()})",
            series=series,
            source=NAME,
        )
    days = _trading_days(pd.DatetimeIndex(bars.index))
    running = _running_session_day(meta, now)
    keep = days != running if running is not None else np.ones(len(days), dtype=bool)
    return to_canonical(days[keep], bars[column].to_numpy()[keep])


def _trading_days(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """yfinance stamps daily bars at exchange-local midnight; the bar *is* that date, not a UTC instant.

    Converting to UTC would turn 2024-03-15 New York into 04:00 or 05:00 UTC depending on DST.
    """
    if index.tz is not None:
        index = index.tz_localize(None)
    return index.normalize()


def _running_session_day(meta: Mapping[str, Any], now: pd.Timestamp) -> pd.Timestamp | None:
    """The exchange-local date of a regular session that has not closed yet: its bar is still moving."""
    regular = (meta.get("currentTradingPeriod") or {}).get("regular") or {}
    start, end = _timestamp(regular.get("start")), _timestamp(regular.get("end"))
    if start is None or end is None or now >= end:
        return None
    return start.tz_localize(None).normalize()


def _timestamp(value: Any) -> pd.Timestamp | None:
    """yfinance formats metadata times as exchange-local Timestamps; raw answers carry epoch seconds."""
    if isinstance(value, pd.Timestamp):
        return value
    if isinstance(value, int):
        return pd.Timestamp(value, unit="s", tz="UTC")
    return None


def _daily_frequency(ts: pd.Series) -> str | None:
    freq = infer_frequency(ts)
    if freq is None and _is_business_daily(pd.DatetimeIndex(ts)):
        # Exchange holidays leave gaps that make strict inference fail on any real trading calendar.
        return "B"
    return freq


def _is_business_daily(index: pd.DatetimeIndex) -> bool:
    """Weekday dates only, and (nearly) every step is one business day: a trading calendar."""
    if len(index) < 3 or index.hasnans or (index.day_of_week >= 5).any() or (index != index.normalize()).any():
        return False
    days = index.to_numpy().astype("datetime64[D]")
    steps = np.busday_count(days[:-1], days[1:])
    return bool((steps >= 1).all() and (steps == 1).mean() >= 0.9)
