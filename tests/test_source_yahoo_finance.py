"""yahoo_finance source: yfinance's own request flow and chart parsing, run over hand-built Yahoo payloads.

yfinance accepts a ``requests.Session`` in place of its curl_cffi one, so `responses` serves every call it
makes: the cookie/crumb handshake, the timezone probe and the chart download (see
tests/fixtures/yahoo_finance/README.md). A call without a registered route fails the test.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
import requests
import responses
import yfinance as yf
import yfinance.base as yf_base
import yfinance.cache as yf_cache
from pydantic import ValidationError
from yahoo_payloads import (
    AFTER_THE_FIXTURES,
    CHART_URL,
    CRUMB,
    CRUMB_URL,
    JSON_TYPE,
    QUOTE_SUMMARY_URL,
    RAGGED,
    RAGGED_WINDOW,
    chart_route,
    isolated_yfinance,
    nyse_sessions,
    payload,
    ragged_routes,
    tz_probe_route,
    yahoo_routes,
)

from forecasting.errors import PermanentSourceError, RetryableSourceError
from forecasting.sources import get_source
from forecasting.sources.base import ValueBounds
from forecasting.sources.yahoo_finance import (
    CACHE_DIR_ENV,
    YahooFinanceParams,
    YahooFinanceSource,
    _daily_frequency,
    default_cache_dir,
)

# yfinance 1.7 still calls pandas APIs that pandas 3.1 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:yfinance.*")

AAPL_DAYS = pd.bdate_range("2024-02-12", "2024-03-15").drop(pd.Timestamp("2024-02-19"))  # Presidents' Day
# fmt: off
AAPL_CLOSE = [
    187.15, 185.04, 184.15, 183.86, 182.31, 181.56, 182.32, 184.37, 182.52, 181.16, 182.63, 181.42,
    180.75, 179.66, 175.10, 170.12, 169.12, 169.00, 170.73, 172.75, 173.23, 171.13, 173.00, 172.62,
]
AAPL_VOLUME = [
    41781900, 56529500, 54630500, 65434500, 49752500, 53665600, 41529700, 52292200, 45119700, 40867400,
    54318900, 48953900, 136682600, 73488000, 81510100, 95132400, 68587700, 71765100, 76114600, 60139500,
    59825400, 52488700, 72913500, 121664700,
]
BTC_CLOSE = [
    62440.63, 62029.85, 63167.37, 68330.41, 63801.20, 66106.80, 66925.48, 68300.09, 68498.88, 69019.79,
]
# fmt: on


def f32(values: list[float]) -> list[float]:
    """Yahoo sends prices at single precision (187.14999389648438 for 187.15)."""
    return [float(np.float32(v)) for v in values]


@pytest.fixture(autouse=True)
def _isolated_yfinance(monkeypatch):
    """Fresh yfinance state per test, no real network, and no cache files unless a test asks for them."""
    with isolated_yfinance(monkeypatch):
        yield


@pytest.fixture
def yahoo():
    """Routes for the handshake are registered; each test adds its chart answers."""
    with yahoo_routes() as rsps:
        yield rsps


def _aapl_history(rsps) -> None:
    tz_probe_route(rsps, "AAPL", "chart_AAPL_range-1d.json")
    chart_route(rsps, "AAPL", {"period1": "1707714000"}, body=payload("chart_AAPL_2024-02-12_2024-03-16.json"))


def _source(tmp_path: Path, *, now: pd.Timestamp = AFTER_THE_FIXTURES) -> YahooFinanceSource:
    return YahooFinanceSource(cache_dir=tmp_path, session_factory=requests.Session, clock=lambda: now)


def _aapl(**overrides) -> YahooFinanceParams:
    return YahooFinanceParams(**{"ticker": "AAPL", "start": "2024-02-12", "end": "2024-03-16", **overrides})


def _chart_queries(rsps, symbol: str) -> list[dict[str, list[str]]]:
    prefix = CHART_URL.format(symbol=symbol)
    return [parse_qs(urlsplit(c.request.url).query) for c in rsps.calls if c.request.url.startswith(prefix)]


def _expected(days, values) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.DatetimeIndex(days).astype("datetime64[ns]"), "value": values})


@pytest.mark.parametrize(
    ("field", "values", "unit"),
    [("close", f32(AAPL_CLOSE), "USD"), ("volume", AAPL_VOLUME, "shares")],
)
def test_daily_bars_become_exchange_local_dates(yahoo, tmp_path, field, values, unit):
    _aapl_history(yahoo)

    result = _source(tmp_path).fetch(_aapl(field=field), series="aapl")

    # Bars are stamped 14:30 UTC (13:30 after DST on Mar 10); each becomes its New York date at midnight.
    pd.testing.assert_frame_equal(result.frame, _expected(AAPL_DAYS, values), check_dtype=False)
    assert result.frame["ts"].dtype == "datetime64[ns]"
    assert result.frequency == "B"  # despite the Presidents' Day gap
    assert result.unit == unit


def test_adj_close_is_yahoos_adjusted_column(yahoo, tmp_path):
    _aapl_history(yahoo)
    adjclose = json.loads(payload("chart_AAPL_2024-02-12_2024-03-16.json"))["chart"]["result"][0]["indicators"][
        "adjclose"
    ][0]["adjclose"]

    result = _source(tmp_path).fetch(_aapl(), series="aapl")

    pd.testing.assert_frame_equal(result.frame, _expected(AAPL_DAYS, adjclose))
    assert (result.frame["value"] < f32(AAPL_CLOSE)).all()


def test_window_is_requested_in_exchange_time(yahoo, tmp_path):
    _aapl_history(yahoo)

    _source(tmp_path).fetch(_aapl(), series="aapl")

    probe, history = _chart_queries(yahoo, "AAPL")
    assert probe["range"] == ["1d"]
    assert history == {
        "period1": ["1707714000"],  # 2024-02-12 00:00 New York (EST)
        "period2": ["1710561600"],  # 2024-03-16 00:00 New York (EDT)
        "interval": ["1d"],
        "includePrePost": ["False"],
        "events": ["div,splits,capitalGains"],
        "crumb": [CRUMB],
    }


@pytest.mark.parametrize("ticker", list(RAGGED))
def test_listings_with_ragged_ends_keep_their_own_sessions(yahoo, tmp_path, ticker):
    ragged_routes(yahoo)
    start, end = RAGGED_WINDOW
    first, last = RAGGED[ticker]
    answer = json.loads(payload(f"chart_{ticker}_{start}_{end}.json"))["chart"]["result"][0]

    result = _source(tmp_path).fetch(YahooFinanceParams(ticker=ticker, start=start, end=end), series=ticker)

    # The same window gives each listing its own first and last session, NYSE holidays missing, across the
    # DST changes (bars at 14:30 UTC in winter, 13:30 UTC in summer).
    pd.testing.assert_frame_equal(
        result.frame, _expected(nyse_sessions(first, last), answer["indicators"]["adjclose"][0]["adjclose"])
    )
    assert {pd.Timestamp(t, unit="s").strftime("%H:%M") for t in answer["timestamp"]} == {"13:30", "14:30"}
    assert result.frequency == "B"
    assert result.unit == "USD"


def test_crypto_over_a_period_is_daily(yahoo, tmp_path):
    tz_probe_route(yahoo, "BTC-USD", "chart_BTC-USD_range-1d.json")
    chart_route(yahoo, "BTC-USD", {"range": "5y", "interval": "1d"}, body=payload("chart_BTC-USD_range-5y.json"))

    result = _source(tmp_path).fetch(YahooFinanceParams(ticker="BTC-USD", period="5y", field="close"), series="btc")

    expected = _expected(pd.date_range("2024-03-01", periods=10, freq="D"), f32(BTC_CLOSE))
    pd.testing.assert_frame_equal(result.frame, expected)
    assert result.frequency == "D"
    assert result.unit == "USD"


def test_bar_of_a_session_still_trading_is_dropped(yahoo, tmp_path):
    _aapl_history(yahoo)
    during_the_session = pd.Timestamp("2024-03-15 14:00", tz="America/New_York")

    frame = _source(tmp_path, now=during_the_session).fetch(_aapl(field="close"), series="aapl").frame

    pd.testing.assert_frame_equal(frame, _expected(AAPL_DAYS[:-1], f32(AAPL_CLOSE[:-1])))


def test_rate_limit_is_retryable(yahoo, tmp_path):
    chart_route(yahoo, "AAPL", {}, status=429, body="Too Many Requests\r\n")

    with pytest.raises(RetryableSourceError) as info:
        _source(tmp_path).fetch(_aapl(), series="aapl")

    assert info.value.retryable is True
    assert str(info.value) == (
        "[yahoo_finance:aapl] Yahoo Finance rate-limited the request for ticker 'AAPL'; retry later"
    )
    assert yf.config.debug.hide_exceptions is True  # the override is undone after a failure too


def test_rate_limited_crumb_then_chart_is_retryable(yahoo, tmp_path):
    yahoo.replace(responses.GET, CRUMB_URL, status=429, body="Too Many Requests\r\n")
    chart_route(yahoo, "AAPL", {}, status=429, body="Too Many Requests\r\n")

    with pytest.raises(RetryableSourceError, match=re.escape("rate-limited the request for ticker 'AAPL'")):
        _source(tmp_path).fetch(_aapl(), series="aapl")


@pytest.mark.parametrize(
    "exc",
    [requests.ConnectionError("Connection reset by peer"), requests.ReadTimeout("Read timed out. (read timeout=30)")],
    ids=["connection", "timeout"],
)
def test_network_errors_are_retryable(yahoo, tmp_path, exc):
    chart_route(yahoo, "AAPL", {}, body=exc)

    with pytest.raises(RetryableSourceError) as info:
        _source(tmp_path).fetch(_aapl(), series="aapl")

    assert info.value.retryable is True
    assert str(info.value) == (
        f"[yahoo_finance:aapl] network error talking to Yahoo Finance for ticker 'AAPL': {type(exc).__name__}: {exc}"
    )


def test_server_error_page_is_retryable(yahoo, tmp_path):
    chart_route(yahoo, "AAPL", {}, status=502, body="<html><body>502 Bad Gateway</body></html>")

    with pytest.raises(RetryableSourceError) as info:
        _source(tmp_path).fetch(_aapl(), series="aapl")

    # yfinance does not raise on a 5xx; it tries to read the HTML page as JSON.
    assert str(info.value).startswith(
        "[yahoo_finance:aapl] network error talking to Yahoo Finance for ticker 'AAPL': JSONDecodeError:"
    )


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ({}, "no timezone found"),  # period max: yfinance needs the exchange timezone first
        ({"period": "5y"}, "No data found, symbol may be delisted"),  # Yahoo's own reason
    ],
    ids=["period max", "period 5y"],
)
def test_unknown_ticker_is_permanent(yahoo, tmp_path, window, reason):
    chart_route(yahoo, "NOSUCHTICKER", {}, status=404, body=payload("chart_not_found.json"))

    with pytest.raises(PermanentSourceError) as info:
        _source(tmp_path).fetch(YahooFinanceParams(ticker="NOSUCHTICKER", **window), series="nosuch")

    assert info.value.retryable is False
    assert str(info.value) == (
        "[yahoo_finance:nosuch] Yahoo Finance has no data for ticker 'NOSUCHTICKER' (unknown or delisted?): " + reason
    )


def test_unknown_ticker_via_quote_summary_fallback_is_permanent(yahoo, tmp_path, monkeypatch):
    monkeypatch.setattr(yf_base, "_tz_info_fetch_ctr", 0)  # early in a process yfinance also asks quoteSummary
    chart_route(yahoo, "NOSUCHTICKER", {}, status=404, body=payload("chart_not_found.json"))
    yahoo.get(
        QUOTE_SUMMARY_URL.format(symbol="NOSUCHTICKER"),
        status=404,
        body=payload("quoteSummary_NOSUCHTICKER_not_found.json"),
        content_type=JSON_TYPE,
    )

    with pytest.raises(PermanentSourceError) as info:
        _source(tmp_path).fetch(YahooFinanceParams(ticker="NOSUCHTICKER"), series="nosuch")

    assert str(info.value) == "[yahoo_finance:nosuch] Yahoo Finance knows no ticker 'NOSUCHTICKER' (HTTP 404)"


def test_window_without_sessions_is_permanent(yahoo, tmp_path):
    tz_probe_route(yahoo, "AAPL", "chart_AAPL_range-1d.json")
    chart_route(
        yahoo, "AAPL", {"period1": "1710561600"}, body=payload("chart_AAPL_2024-03-16_2024-03-18_no_sessions.json")
    )

    with pytest.raises(PermanentSourceError) as info:
        _source(tmp_path).fetch(_aapl(start="2024-03-16", end="2024-03-18"), series="aapl")

    assert str(info.value) == (
        "[yahoo_finance:aapl] Yahoo Finance has no data for ticker 'AAPL' (unknown or delisted?): "
        "no price data found (1d 2024-03-16 -> 2024-03-18)"
    )


def test_caches_are_written_to_the_configured_folder(yahoo, tmp_path, monkeypatch):
    # Real sqlite caches this time, in tmp_path: never in the (possibly read-only) home directory.
    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", None)
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", None)
    _aapl_history(yahoo)

    _source(tmp_path).fetch(_aapl(), series="aapl")

    assert yf_cache._TzDBManager.get_location() == str(tmp_path)
    assert yf_cache._CookieDBManager.get_location() == str(tmp_path)
    assert (tmp_path / "tkr-tz.db").is_file()
    assert (tmp_path / "cookies.db").is_file()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert default_cache_dir() == Path(tempfile.gettempdir()) / "forecasting-yfinance"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    assert default_cache_dir() == tmp_path


@pytest.mark.parametrize(
    ("field", "bounds"),
    [
        ("adj_close", ValueBounds(min_value=0, strict_min=True)),
        ("close", ValueBounds(min_value=0, strict_min=True)),
        ("volume", ValueBounds(min_value=0)),
    ],
)
def test_bounds(field, bounds):
    assert YahooFinanceSource().bounds(YahooFinanceParams(ticker="AAPL", field=field)) == bounds


def test_registry_builds_the_source():
    source = get_source("yahoo_finance")
    assert isinstance(source, YahooFinanceSource)
    assert source.params_model is YahooFinanceParams


def test_param_defaults():
    params = YahooFinanceParams(ticker="AAPL")
    assert (params.field, params.period, params.start, params.end) == ("adj_close", None, None, None)
    assert params.window() == {"period": "max"}
    assert _aapl().window() == {"start": pd.Timestamp("2024-02-12").date(), "end": pd.Timestamp("2024-03-16").date()}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "1wk"}, "interval\n  Extra inputs are not permitted"),
        ({"period": "5y", "start": "2020-01-01"}, "give either period or start/end, not both"),
        ({"period": "max", "end": "2024-01-01"}, "give either period or start/end, not both"),
        ({"end": "2024-01-01"}, "end needs a start"),
        ({"start": "2024-01-02", "end": "2024-01-02"}, "end (2024-01-02) must be after start (2024-01-02)"),
        ({"period": "5 years"}, "period\n  String should match pattern"),
        ({"field": "adjclose"}, "field\n  Input should be 'open', 'high', 'low', 'close', 'adj_close' or 'volume'"),
        ({"ticker": ""}, "ticker\n  String should have at least 1 character"),
    ],
    ids=[
        "unknown key",
        "period+start",
        "period+end",
        "end alone",
        "empty window",
        "bad period",
        "bad field",
        "empty ticker",
    ],
)
def test_invalid_params_are_rejected(kwargs, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        YahooFinanceParams(**{"ticker": "AAPL", **kwargs})


def test_ticker_is_required():
    with pytest.raises(ValidationError, match=r"ticker\n  Field required"):
        YahooFinanceParams()


def test_fetch_rejects_foreign_params():
    with pytest.raises(TypeError, match="yahoo_finance needs YahooFinanceParams, got SourceParams"):
        YahooFinanceSource().fetch(YahooFinanceParams.__base__(), series="aapl")


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (pd.bdate_range("2024-01-01", periods=10), "B"),
        (pd.bdate_range("2024-01-01", periods=30).delete([4, 17]), "B"),  # two holidays
        (pd.date_range("2024-01-05", periods=6, freq="W-FRI"), "W-FRI"),
        (pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-09", "2024-02-01"]), None),
        (pd.DatetimeIndex(["2024-01-01", "2024-01-02"]), None),
    ],
    ids=["business days", "with holidays", "weekly", "irregular", "too short"],
)
def test_daily_frequency(days, expected):
    assert _daily_frequency(pd.Series(days)) == expected
