"""Google Trends "interest over time" for one keyword, downloaded with pytrends.

Google Trends has no official API: pytrends replays the web UI's calls (a cookie page, ``api/explore`` for
widget tokens, ``api/widgetdata/multiline`` for the series). Google rate-limits these per IP, so calls are
paced and a 429 is surfaced at once as retryable instead of being retried here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Literal

import pandas as pd
import requests
from pydantic import Field

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

__all__ = ["GoogleTrendsParams", "GoogleTrendsSource"]

NAME = "google_trends"
UNIT = "interest (0-100)"

_Seconds = Annotated[float, Field(gt=0)]


class GoogleTrendsParams(SourceParams):
    """What to ask Google Trends for; the fields mirror pytrends' ``TrendReq`` and ``build_payload``."""

    keyword: str = Field(min_length=1)
    geo: str = ""  # "" = worldwide, else an ISO code such as "US" or "US-CA"
    timeframe: str = "today 5-y"  # "today 5-y" is weekly, "today 3-m" daily, "all" monthly
    category: int = Field(default=0, ge=0)
    gprop: Literal["", "images", "news", "youtube", "froogle"] = ""
    hl: str = Field(default="en-US", min_length=2)
    tz: int = Field(default=0, ge=-1440, le=1440)  # minutes off UTC; 0 keeps Google's timestamps in UTC
    timeout: _Seconds | tuple[_Seconds, _Seconds] = (10.0, 25.0)  # requests' (connect, read) seconds
    pause_seconds: float = Field(default=1.0, ge=0)  # minimum gap between two calls to Google


class _Pacer:
    """Keeps a minimum gap between calls to Google across the whole process.

    Google throttles by IP, so a burst of series in one worker trips 429s; spacing the calls is cheaper
    than the retries.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last: float | None = None

    def wait(self, min_gap: float) -> None:
        with self._lock:
            if min_gap > 0 and self._last is not None:
                remaining = min_gap - (self._clock() - self._last)
                if remaining > 0:
                    self._sleep(remaining)
            self._last = self._clock()


_PACER = _Pacer()


class GoogleTrendsSource(SeriesSource):
    """Weekly, daily or monthly search interest (0-100, relative to the peak of the window)."""

    name = NAME
    params_model = GoogleTrendsParams

    def __init__(self, *, pacer: _Pacer | None = None) -> None:
        self._pacer = pacer or _PACER

    def fetch(self, params: SourceParams, *, series: str) -> FetchResult:
        # imported on the first download: reading a config that names this source must not load pytrends
        from pytrends.exceptions import ResponseError, TooManyRequestsError

        p = _check_params(params)
        try:
            raw = self._download(p)
        except TooManyRequestsError as exc:
            raise RateLimitError(
                f"Google Trends rate-limited the request for keyword {p.keyword!r} (HTTP 429); retry later",
                series=series,
                source=NAME,
            ) from exc
        except ResponseError as exc:
            raise _http_error(exc, p, series) from exc
        except requests.RequestException as exc:
            raise RetryableSourceError(
                f"network error talking to Google Trends for keyword {p.keyword!r}: {type(exc).__name__}: {exc}",
                series=series,
                source=NAME,
            ) from exc
        frame = _complete_periods(raw, p, series)
        return FetchResult(frame=frame, frequency=infer_frequency(frame[TS]), unit=UNIT)

    def bounds(self, params: SourceParams) -> ValueBounds:
        return ValueBounds(min_value=0, max_value=100)

    def _download(self, p: GoogleTrendsParams) -> pd.DataFrame:
        """The three calls pytrends makes: cookie page (in ``TrendReq``), widget tokens, then the series."""
        self._pacer.wait(p.pause_seconds)
        # retries=0: pytrends' urllib3 Retry would turn a 429 into a long silent stall (and its
        # ``method_whitelist`` argument no longer exists in urllib3 2); the orchestrator retries instead.
        from pytrends.request import TrendReq

        client = TrendReq(hl=p.hl, tz=p.tz, timeout=p.timeout, retries=0, backoff_factor=0)
        self._pacer.wait(p.pause_seconds)
        client.build_payload([p.keyword], cat=p.category, timeframe=p.timeframe, geo=p.geo, gprop=p.gprop)
        self._pacer.wait(p.pause_seconds)
        return client.interest_over_time()


def _check_params(params: SourceParams) -> GoogleTrendsParams:
    if not isinstance(params, GoogleTrendsParams):
        raise TypeError(f"{NAME} needs GoogleTrendsParams, got {type(params).__name__}")
    return params


def _http_error(exc: Exception, p: GoogleTrendsParams, series: str) -> SourceError:
    """4xx means the request itself is wrong; anything else (5xx, a 200 HTML page) may pass later."""
    status = getattr(exc.response, "status_code", None)
    if status is not None and 400 <= status < 500 and status != 408:
        return PermanentSourceError(
            f"Google Trends rejected the request for keyword {p.keyword!r} (HTTP {status}); "
            f"check keyword, geo={p.geo!r}, timeframe={p.timeframe!r}, category={p.category} and gprop",
            series=series,
            source=NAME,
        )
    return RetryableSourceError(
        f"Google Trends answered HTTP {status} for keyword {p.keyword!r}; retry later",
        series=series,
        source=NAME,
    )


def _complete_periods(raw: pd.DataFrame, p: GoogleTrendsParams, series: str) -> pd.DataFrame:
    """Canonical frame of the finished periods: the running one (isPartial) would be revised later."""
    if raw.empty:
        # Google answers a keyword without enough search volume with an empty timeline.
        raise PermanentSourceError(
            f"Google Trends has no data for keyword {p.keyword!r} (geo={p.geo!r}, timeframe={p.timeframe!r})",
            series=series,
            source=NAME,
        )
    complete = raw
    if "isPartial" in raw.columns:
        complete = raw.loc[~raw["isPartial"].astype(bool)].drop(columns="isPartial")
    if complete.empty:
        raise PermanentSourceError(
            f"Google Trends returned only a partial (still running) period for keyword {p.keyword!r}",
            series=series,
            source=NAME,
        )
    return to_canonical(complete.index, complete[p.keyword])
