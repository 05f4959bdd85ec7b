"""Serving the hand-built Yahoo Finance payloads (tests/fixtures/yahoo_finance) to yfinance's own code.

yfinance accepts a ``requests.Session`` in place of its curl_cffi one, so `responses` can answer every call it
makes: the cookie/crumb handshake, the timezone probe and the chart download (see the fixtures' README). The
test modules build their fixtures from these helpers; a call without a registered route fails the test.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import curl_cffi.requests
import pandas as pd
import pytest
import requests
import responses
import yfinance.base as yf_base
import yfinance.cache as yf_cache
from responses import matchers
from yfinance.data import SingletonMeta, YfData

from forecasting.sources.yahoo_finance import YahooFinanceSource

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo_finance"
FC_URL = "https://fc.yahoo.com/"
CRUMB_URL = "https://query1.finance.yahoo.com/v1/test/getcrumb"
CONSENT_URL = "https://guce.yahoo.com/consent"
CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{symbol}"
QUOTE_SUMMARY_URL = "https://query2.finance.yahoo.com/v10/finance/quoteSummary/{symbol}"
CRUMB = "hXq0JqT5.dC"
JSON_TYPE = "application/json;charset=utf-8"
UNMATCHED = "Connection refused by Responses"
AFTER_THE_FIXTURES = pd.Timestamp("2024-03-20 12:00", tz="UTC")  # every fixture session has closed


def payload(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@contextmanager
def isolated_yfinance(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh yfinance state, no real network, and no cache files unless a test asks for them."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a real network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(curl_cffi.requests.Session, "request", refuse)
    # YfData is a process-wide singleton holding session, cookie and crumb; cache_get memoises answers.
    SingletonMeta._instances.pop(YfData, None)
    YfData.cache_get.cache_clear()
    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", yf_cache._TzCacheDummy())
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", yf_cache._CookieCacheDummy())
    # yfinance asks quoteSummary for a timezone only for the first two failures in a process.
    monkeypatch.setattr(yf_base, "_tz_info_fetch_ctr", 2)
    try:
        yield
    finally:
        SingletonMeta._instances.pop(YfData, None)
        YfData.cache_get.cache_clear()


@contextmanager
def yahoo_routes() -> Iterator[responses.RequestsMock]:
    """A `responses` mock with the handshake routes registered; callers add the chart answers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(
            FC_URL,
            status=404,
            body="<!doctype html><html><body>404 Not Found</body></html>",
            content_type="text/html; charset=utf-8",
            headers={
                "Set-Cookie": "A3=d=AQABBKxTESTAAAAAAAAAA&S=AQAAAhandbuilt; Max-Age=31557600; Domain=.yahoo.com; "
                "Path=/; SameSite=None; Secure; HttpOnly"
            },
        )
        rsps.get(CRUMB_URL, body=CRUMB, content_type="text/plain;charset=utf-8")
        # After a 4xx yfinance retries with the consent-page ("csrf") handshake; outside the EU there is
        # no consent form, so it falls back to the basic one.
        rsps.get(CONSENT_URL, body="<!doctype html><html><body></body></html>", content_type="text/html")
        yield rsps
        unmatched = [c.request.url for c in rsps.calls if UNMATCHED in str(c.response)]
        assert not unmatched, f"calls without a registered route: {unmatched}"


def chart_route(
    rsps: responses.RequestsMock, symbol: str, query: dict[str, str], *, status: int = 200, body: str | Exception = ""
) -> None:
    rsps.get(
        CHART_URL.format(symbol=symbol),
        status=status,
        body=body,
        content_type=JSON_TYPE,
        match=[matchers.query_param_matcher(query, strict_match=False)],
    )


def tz_probe_route(rsps: responses.RequestsMock, symbol: str, name: str) -> None:
    chart_route(rsps, symbol, {"range": "1d", "interval": "1d"}, body=payload(name))


def sources_served_by_responses(
    monkeypatch: pytest.MonkeyPatch, cache_dir: Path, *, clock: Callable[[], pd.Timestamp] = lambda: AFTER_THE_FIXTURES
) -> None:
    """Every YahooFinanceSource built without arguments (as the registry builds it for ingest) talks through a
    plain ``requests.Session``, keeps its caches in ``cache_dir`` and runs after the fixtures' last session."""
    build = YahooFinanceSource.__init__

    def served(self, *, cache_dir: Path | None = cache_dir, session_factory=requests.Session, clock=clock) -> None:
        build(self, cache_dir=cache_dir, session_factory=session_factory, clock=clock)

    monkeypatch.setattr(YahooFinanceSource, "__init__", served)


# The three made-up NYSE listings with ragged ends (build_fixtures.py), all answering one request window.
RAGGED_WINDOW = ("2023-01-01", "2024-03-16")  # start, end (exclusive) as given to the source
RAGGED_PERIOD1 = "1672549200"  # 2023-01-01 00:00 New York (EST)
RAGGED = {  # ticker: (first session, last session)
    "XMPA": ("2023-01-03", "2024-03-15"),  # trades through the window
    "XMPL": ("2023-06-01", "2024-03-15"),  # lists later
    "XMPD": ("2023-03-01", "2024-02-01"),  # stops trading early
}
# Weekdays the New York Stock Exchange was closed, 2023-01-01 .. 2024-03-15.
NYSE_HOLIDAYS = pd.DatetimeIndex(
    [
        "2023-01-02",  # New Year's Day (observed)
        "2023-01-16",  # Martin Luther King Jr. Day
        "2023-02-20",  # Presidents' Day
        "2023-04-07",  # Good Friday
        "2023-05-29",  # Memorial Day
        "2023-06-19",  # Juneteenth
        "2023-07-04",  # Independence Day
        "2023-09-04",  # Labor Day
        "2023-11-23",  # Thanksgiving
        "2023-12-25",  # Christmas
        "2024-01-01",  # New Year's Day
        "2024-01-15",  # Martin Luther King Jr. Day
        "2024-02-19",  # Presidents' Day
    ]
)


def nyse_sessions(first: str, last: str) -> pd.DatetimeIndex:
    days = pd.bdate_range(first, last)
    return days[~days.isin(NYSE_HOLIDAYS)]


def ragged_routes(rsps: responses.RequestsMock) -> None:
    """The timezone probe and the window's chart answer of each ragged listing."""
    start, end = RAGGED_WINDOW
    for ticker in RAGGED:
        tz_probe_route(rsps, ticker, f"chart_{ticker}_range-1d.json")
        chart_route(rsps, ticker, {"period1": RAGGED_PERIOD1}, body=payload(f"chart_{ticker}_{start}_{end}.json"))
