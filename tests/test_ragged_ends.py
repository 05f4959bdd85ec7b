"""Ragged ends: series of one partition that start and end on different days each get a champion (issue 19).

Real panels are ragged: tickers list and delist, a download fails for a day. Each series must be backtested on
its own last points, not on cut-offs taken from the partition, and forecast from its own last observation. Both
tests run ``forecasting run`` end to end against the real database: one on three daily CSV series, one on the
hand-built Yahoo Finance payloads of three NYSE listings (tests/fixtures/yahoo_finance), served to yfinance's
own code through `responses`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from yahoo_payloads import (
    RAGGED,
    RAGGED_WINDOW,
    isolated_yfinance,
    nyse_sessions,
    ragged_routes,
    sources_served_by_responses,
    yahoo_routes,
)

from forecasting.config import parse_config
from forecasting.run import execute

HORIZON = 5
MODELS = ["naive", "seasonal_naive", "linear"]


def _config(name: str, series: list[dict]):
    return parse_config(
        {
            "name": name,
            "series": series,
            "preprocessing": {"horizon": HORIZON, "target_lags": [1, 2, 5]},
            "models": {"enabled": MODELS},  # backtest n_windows: auto (the default)
            "ingest": {"retries": 0},
        }
    )


def _stored(conn) -> dict[str, tuple]:
    """name: (frequency, rows, first ts, last ts) of each series' current version."""
    rows = conn.execute(
        "SELECT s.name, s.frequency, v.row_count, v.first_ts, v.last_ts FROM series s "
        "JOIN series_versions v ON v.series_id = s.series_id AND v.is_current"
    ).fetchall()
    return {name: (freq, n, pd.Timestamp(first), pd.Timestamp(last)) for name, freq, n, first, last in rows}


def _forecast_starts(conn) -> dict[str, tuple[pd.Timestamp, pd.Timestamp, int]]:
    """name: (last observation the champion forecast from, its first forecast timestamp, its steps)."""
    rows = conn.execute(
        "SELECT series_name, max(last_ts), min(ts), count(*) FROM champion_forecasts GROUP BY series_name"
    ).fetchall()
    return {name: (pd.Timestamp(last), pd.Timestamp(first), n) for name, last, first, n in rows}


def _assert_every_series_gets_a_champion(report, conn, last_days: dict[str, pd.Timestamp], step) -> None:
    names = sorted(last_days)
    assert report.errors == {}
    assert len(report.partitions) == 1 and report.partitions[0]["n_series"] == len(names)  # one partition, ragged
    whole = report.skipped_series
    assert whole.empty, [f"{r.series} skipped ({r.step}): {r.reason}" for r in whole.itertuples()]
    assert sorted(report.champions["series"]) == names
    assert set(report.champions["champion"]) <= set(MODELS)
    # each series is forecast from its own last observation, starting one period after it
    assert _forecast_starts(conn) == {n: (last_days[n], last_days[n] + step, HORIZON) for n in names}
    assert report.status == "succeeded"


def _daily_csv(tmp_path, name: str, *, start: str, seed: int, n: int = 200) -> str:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq="D")
    weekly = 6 * np.sin(2 * np.pi * ts.day_of_week.to_numpy() / 7)
    values = 100 + 10 * seed + weekly + rng.normal(0, 2, n)
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%d"), "value": values.round(4)}).to_csv(path, index=False)
    return str(path)


def test_a_series_ending_later_costs_the_others_nothing(database, tmp_path, conn):
    # ra and rb end on 2024-07-18; rc, as long, ends 30 days later
    starts = {"ra": "2024-01-01", "rb": "2024-01-01", "rc": "2024-01-31"}
    series = [
        {"name": name, "source": "csv", "params": {"path": _daily_csv(tmp_path, name, start=start, seed=i)}}
        for i, (name, start) in enumerate(starts.items())
    ]

    report = execute(database, _config("ragged-csv", series), command="run")

    assert report.ingest is not None and not report.ingest.failed
    last_days = {name: pd.Timestamp(start) + pd.Timedelta(days=199) for name, start in starts.items()}
    assert _stored(conn) == {name: ("D", 200, pd.Timestamp(start), last_days[name]) for name, start in starts.items()}
    _assert_every_series_gets_a_champion(report, conn, last_days, pd.Timedelta(days=1))


@pytest.fixture
def recorded_yahoo(monkeypatch, tmp_path):
    """The three ragged listings' payloads, answered to every YahooFinanceSource the pipeline builds."""
    with isolated_yfinance(monkeypatch), yahoo_routes() as rsps:
        sources_served_by_responses(monkeypatch, tmp_path / "yfinance-cache")
        ragged_routes(rsps)
        yield rsps


# yfinance 1.7 still calls pandas APIs that pandas 3.1 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:yfinance.*")
def test_yahoo_listings_with_different_first_and_last_sessions_all_get_champions(database, conn, recorded_yahoo):
    start, end = RAGGED_WINDOW
    series = [
        {"name": ticker, "source": "yahoo_finance", "params": {"ticker": ticker, "start": start, "end": end}}
        for ticker in RAGGED
    ]

    report = execute(database, _config("ragged-yahoo", series), command="run")

    # ingest: every listing stored as business-daily, with its own first and last session
    assert report.ingest is not None and not report.ingest.failed
    sessions = {ticker: nyse_sessions(first, last) for ticker, (first, last) in RAGGED.items()}
    assert _stored(conn) == {t: ("B", len(days), days[0], days[-1]) for t, days in sessions.items()}
    # holidays stay missing in the store (preprocessing fills them for modeling)
    assert conn.execute(
        "SELECT count(*) FROM current_observations WHERE ts = '2023-07-04' OR ts = '2023-11-23'"
    ).fetchone() == (0,)
    # each listing is forecast from its own last session: the next business day (2024-03-18 after Friday
    # 2024-03-15 for XMPA and XMPL, 2024-02-02 after Thursday 2024-02-01 for XMPD)
    last_days = {ticker: days[-1] for ticker, days in sessions.items()}
    _assert_every_series_gets_a_champion(report, conn, last_days, pd.offsets.BDay(1))
