"""google_trends source: pytrends' own HTTP and parsing code, run over hand-built Google payloads.

`responses` intercepts every call pytrends makes through requests (see tests/fixtures/google_trends/README.md);
a call without a registered route fails the test instead of reaching Google.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import requests
import responses
from pydantic import ValidationError
from responses import matchers

from forecasting.errors import PermanentSourceError, RetryableSourceError
from forecasting.sources import get_source
from forecasting.sources.base import ValueBounds
from forecasting.sources.google_trends import GoogleTrendsParams, GoogleTrendsSource, _Pacer

FIXTURES = Path(__file__).parent / "fixtures" / "google_trends"
BASE = "https://trends.google.com/trends"
COOKIE_URL = f"{BASE}/explore/?geo=US"  # pytrends takes the geo of its cookie page from hl[-2:]
EXPLORE_URL = f"{BASE}/api/explore"
MULTILINE_URL = f"{BASE}/api/widgetdata/multiline"
JSON_TYPE = "application/json; charset=utf-8"
NID = "511=hand-built-test-cookie"
UNMATCHED = "Connection refused by Responses"


def _payload(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _widget_token(explore_file: str) -> str:
    body = json.loads(_payload(explore_file)[4:])  # pytrends trims 4 characters, ")]}'"
    return next(w["token"] for w in body["widgets"] if w["id"] == "TIMESERIES")


def _params(**overrides) -> GoogleTrendsParams:
    return GoogleTrendsParams(**{"keyword": "python", "pause_seconds": 0, **overrides})


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a real network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def google():
    """Every requests call is served from registered routes; afterwards, no call may have gone unmatched."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps
        unmatched = [c.request.url for c in rsps.calls if UNMATCHED in str(c.response)]
        assert not unmatched, f"calls without a registered route: {unmatched}"


def _cookie_route(rsps: responses.RequestsMock) -> None:
    rsps.get(
        COOKIE_URL,
        status=200,
        body="<!doctype html><html><head><title>Google Trends</title></head><body></body></html>",
        content_type="text/html; charset=utf-8",
        headers={"Set-Cookie": f"NID={NID}; Max-Age=15724800; Path=/; Domain=.google.com; HttpOnly"},
    )


def _explore_route(rsps: responses.RequestsMock, explore_file: str) -> None:
    rsps.post(EXPLORE_URL, body=_payload(explore_file), content_type=JSON_TYPE)


def _multiline_route(rsps: responses.RequestsMock, explore_file: str, multiline_file: str) -> None:
    token = _widget_token(explore_file)
    rsps.get(
        MULTILINE_URL,
        body=_payload(multiline_file),
        content_type=JSON_TYPE,
        match=[matchers.query_param_matcher({"token": token, "tz": "0"}, strict_match=False)],
    )


CASES = {
    "weekly, today 5-y": dict(
        params={},
        explore="explore_python_today-5-y.txt",
        multiline="multiline_python_today-5-y.txt",
        start="2024-01-07",
        freq="W-SUN",
        values=[78, 84, 86, 85, 88, 87, 90, 89, 93, 95, 100, 92, 94],
    ),
    "daily, fixed window, geo US": dict(
        params={"keyword": "bitcoin", "geo": "US", "timeframe": "2024-03-01 2024-03-14"},
        explore="explore_bitcoin_US_2024-03-01_2024-03-14.txt",
        multiline="multiline_bitcoin_US_2024-03-01_2024-03-14.txt",
        start="2024-03-01",
        freq="D",
        values=[61, 58, 72, 100, 83, 76, 69, 57, 55, 64, 70, 66, 71, 74],
    ),
    "monthly, all": dict(
        params={"timeframe": "all"},
        explore="explore_python_all.txt",
        multiline="multiline_python_all.txt",
        start="2004-01-01",
        freq="MS",
        values=[31, 33, 32, 30, 29, 28, 27, 29, 30, 28, 27, 26, 25],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_recorded_payloads_parse_to_complete_periods(google, case):
    _cookie_route(google)
    _explore_route(google, case["explore"])
    _multiline_route(google, case["explore"], case["multiline"])

    result = GoogleTrendsSource().fetch(_params(**case["params"]), series="trend")

    expected_ts = pd.date_range(case["start"], periods=len(case["values"]), freq=case["freq"])
    expected = pd.DataFrame({"ts": expected_ts.astype("datetime64[ns]"), "value": case["values"]})
    pd.testing.assert_frame_equal(result.frame, expected, check_dtype=False)
    assert result.frame["ts"].dtype == "datetime64[ns]"
    assert result.frequency == case["freq"]
    assert result.unit == "interest (0-100)"


def test_partial_week_is_dropped(google):
    _cookie_route(google)
    _explore_route(google, "explore_python_today-5-y.txt")
    _multiline_route(google, "explore_python_today-5-y.txt", "multiline_python_today-5-y.txt")

    frame = GoogleTrendsSource().fetch(_params(), series="trend").frame

    # The payload's last week (2024-04-07, value 61) carries "isPartial": true.
    assert frame["ts"].iloc[-1] == pd.Timestamp("2024-03-31")
    assert list(frame.columns) == ["ts", "value"]
    assert 61 not in frame["value"].tolist()


def test_requests_carry_payload_token_and_cookie(google):
    _cookie_route(google)
    _explore_route(google, "explore_python_today-5-y.txt")
    _multiline_route(google, "explore_python_today-5-y.txt", "multiline_python_today-5-y.txt")

    GoogleTrendsSource().fetch(_params(category=5), series="trend")

    cookie_call, explore_call, multiline_call = google.calls
    query = parse_qs(urlsplit(explore_call.request.url).query)
    assert query["hl"] == ["en-US"]
    assert query["tz"] == ["0"]
    assert json.loads(query["req"][0]) == {
        "comparisonItem": [{"keyword": "python", "time": "today 5-y", "geo": ""}],
        "category": 5,
        "property": "",
    }
    assert explore_call.request.headers["Cookie"] == f"NID={NID}"
    assert explore_call.request.headers["accept-language"] == "en-US"
    assert multiline_call.request.headers["Cookie"] == f"NID={NID}"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limit_and_server_errors_are_retryable(google, status):
    _cookie_route(google)
    google.post(EXPLORE_URL, status=status, body="<html>Error</html>", content_type="text/html")

    with pytest.raises(RetryableSourceError) as info:
        GoogleTrendsSource().fetch(_params(), series="trend")

    assert info.value.retryable is True
    assert info.value.series == "trend"
    assert info.value.source == "google_trends"
    if status == 429:
        message = (
            "[google_trends:trend] Google Trends rate-limited the request for keyword 'python' (HTTP 429); retry later"
        )
    else:
        message = f"[google_trends:trend] Google Trends answered HTTP {status} for keyword 'python'; retry later"
    assert str(info.value) == message
    # retries=0: pytrends asked once and gave the 429 back instead of retrying behind our back.
    assert [c.request.method for c in google.calls] == ["GET", "POST"]


def test_rate_limit_on_the_series_call_is_retryable(google):
    _cookie_route(google)
    _explore_route(google, "explore_python_today-5-y.txt")
    google.get(MULTILINE_URL, status=429, body="<html>Too Many Requests</html>", content_type="text/html")

    with pytest.raises(RetryableSourceError, match=re.escape("keyword 'python' (HTTP 429)")):
        GoogleTrendsSource().fetch(_params(), series="trend")


@pytest.mark.parametrize(
    "exc",
    [requests.ConnectionError("Connection reset by peer"), requests.ReadTimeout("Read timed out. (read timeout=25)")],
    ids=["connection", "timeout"],
)
def test_network_errors_are_retryable(google, exc):
    google.get(COOKIE_URL, body=exc)

    with pytest.raises(RetryableSourceError) as info:
        GoogleTrendsSource().fetch(_params(), series="trend")

    assert info.value.retryable is True
    assert str(info.value) == (
        "[google_trends:trend] network error talking to Google Trends for keyword 'python': "
        f"{type(exc).__name__}: {exc}"
    )


def test_keyword_without_data_is_permanent(google):
    _cookie_route(google)
    _explore_route(google, "explore_zqxjv-no-such-term_today-5-y.txt")
    _multiline_route(google, "explore_zqxjv-no-such-term_today-5-y.txt", "multiline_empty.txt")

    with pytest.raises(PermanentSourceError) as info:
        GoogleTrendsSource().fetch(_params(keyword="zqxjv no such term"), series="trend")

    assert info.value.retryable is False
    assert str(info.value) == (
        "[google_trends:trend] Google Trends has no data for keyword 'zqxjv no such term' "
        "(geo='', timeframe='today 5-y')"
    )


def test_bad_request_is_permanent(google):
    _cookie_route(google)
    google.post(EXPLORE_URL, status=400, body="<html>Error 400 (Bad Request)</html>", content_type="text/html")

    with pytest.raises(PermanentSourceError) as info:
        GoogleTrendsSource().fetch(_params(timeframe="today 99-y"), series="trend")

    assert info.value.retryable is False
    assert str(info.value) == (
        "[google_trends:trend] Google Trends rejected the request for keyword 'python' (HTTP 400); "
        "check keyword, geo='', timeframe='today 99-y', category=0 and gprop"
    )


def test_bounds_are_zero_to_hundred():
    assert GoogleTrendsSource().bounds(_params()) == ValueBounds(min_value=0, max_value=100)


def test_registry_builds_the_source():
    source = get_source("google_trends")
    assert isinstance(source, GoogleTrendsSource)
    assert source.params_model is GoogleTrendsParams


def test_param_defaults():
    params = GoogleTrendsParams(keyword="python")
    assert (params.geo, params.timeframe, params.category, params.gprop) == ("", "today 5-y", 0, "")
    assert (params.hl, params.tz, params.timeout, params.pause_seconds) == ("en-US", 0, (10.0, 25.0), 1.0)
    assert GoogleTrendsParams(keyword="python", timeout=12.5).timeout == 12.5


def test_unknown_param_is_rejected():
    with pytest.raises(ValidationError, match=r"geography\n  Extra inputs are not permitted"):
        GoogleTrendsParams(keyword="python", geography="US")


def test_keyword_is_required():
    with pytest.raises(ValidationError, match=r"keyword\n  Field required"):
        GoogleTrendsParams()


@pytest.mark.parametrize(
    ("field", "value"),
    [("keyword", ""), ("pause_seconds", -1), ("gprop", "web"), ("category", -1), ("timeout", 0)],
)
def test_invalid_param_values_are_rejected(field, value):
    with pytest.raises(ValidationError, match=re.escape(field)):
        GoogleTrendsParams(**{"keyword": "python", field: value})


def test_fetch_rejects_foreign_params():
    with pytest.raises(TypeError, match="google_trends needs GoogleTrendsParams, got SourceParams"):
        GoogleTrendsSource().fetch(GoogleTrendsParams.__base__(), series="trend")


class _FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_keeps_the_minimum_gap_between_calls():
    fake = _FakeTime()
    pacer = _Pacer(clock=fake.clock, sleep=fake.sleep)

    pacer.wait(2.0)  # first call: nothing to wait for
    fake.now += 0.5
    pacer.wait(2.0)
    fake.now += 5.0
    pacer.wait(2.0)  # the gap already passed
    pacer.wait(0)  # pacing off

    assert fake.slept == [1.5]
