"""The price analysis of the web app for a Yahoo Finance series, after a real backtest, training and prediction on
the embedded PostgreSQL: synthetic business-day prices stored as a ``yahoo_finance`` series (no network)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import with_dbname
from fastapi.testclient import TestClient

from forecasting.analysis.signals import BacktestWindow, backtest_signal_stats
from forecasting.config import parse_config
from forecasting.db import Database
from forecasting.run import execute
from forecasting.store.writers import SeriesMeta, series_upsert
from forecasting.web import create_app

N_WINDOWS, HORIZON = 4, 5


@pytest.fixture(scope="module")
def client(pg_server, migrated_template):
    name = "prices_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    database = Database(url=with_dbname(pg_server, name), embedded=True)
    rng = np.random.default_rng(11)
    prices = 50 * np.exp(np.cumsum(rng.normal(0.001, 0.01, 260)))  # a geometric random walk with drift
    frame = pd.DataFrame({"ts": pd.bdate_range("2024-01-01", periods=260).astype("datetime64[ns]"),
                          "value": prices.round(4)})
    params = {"ticker": "ACME", "field": "adj_close", "period": "5y"}
    with database.connect() as conn:
        series_upsert(conn, meta=SeriesMeta(source="yahoo_finance", name="ACME", params=params, frequency="B",
                                            unit="USD", config_name="prices"), frame=frame)
    config = parse_config({
        "name": "prices",
        "series": [{"name": "ACME", "source": "yahoo_finance", "params": params}],
        "preprocessing": {"horizon": HORIZON, "target_lags": [1, 2, 5]},
        "models": {"enabled": ["naive", "linear"]},
        "backtest": {"n_windows": N_WINDOWS, "modes": ["latest"]},
        "prediction": {"levels": [80, 95]},
    })
    for command in ("train", "predict"):
        assert execute(database, config, command=command).status == "succeeded"
    with TestClient(create_app(database)) as test_client:
        yield test_client, database
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_signal_of_a_price_series(client):
    client, database = client
    answer = client.get("/api/v1/series/ACME/signal", params={"threshold": 0.55})
    assert answer.status_code == 200, answer.text
    signal = answer.json()
    forecast = client.get("/api/v1/series/ACME/forecast").json()
    horizon_end = forecast["points"][-1]
    assert signal["horizon"] == HORIZON and signal["model"] == forecast["model"]
    assert signal["expected_return"] == pytest.approx(horizon_end["yhat"] / forecast["last_value"] - 1)
    assert 0 <= signal["p_up"] <= 1
    expected = "up" if signal["p_up"] >= 0.55 else "down" if signal["p_up"] <= 0.45 else "hold"
    assert signal["signal"] == expected and "not investment advice" in signal["disclaimer"]

    # the backtest record is the champion's windows, recomputed here from the stored backtest forecasts
    with database.connect() as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (window_no) origin_value, y, yhat FROM v_backtest_forecasts WHERE series_name = 'ACME' "
            "AND model = %s AND mode = 'latest' ORDER BY window_no, step DESC", (signal["model"],)).fetchall()
    assert len(rows) == N_WINDOWS
    record = backtest_signal_stats([BacktestWindow(*row) for row in rows])
    backtest = signal["backtest"]
    assert backtest["n_windows"] == N_WINDOWS and backtest["hit_rate"] == record["hit_rate"]
    assert backtest["strategy_return"] == pytest.approx(record["strategy_return"])
    assert backtest["var_95"] == pytest.approx(record["var_95_error"] - signal["expected_return"])


def test_series_page_shows_the_price_analysis(client):
    client, _ = client
    page = client.get("/series/ACME")
    assert page.status_code == 200 and '<section class="price-analysis">' in page.text
    assert "not investment advice" in page.text


def test_signal_refuses_other_series_and_bad_thresholds(client):
    client, _ = client
    assert client.get("/api/v1/series/ACME/signal", params={"threshold": 0.3}).status_code == 422
    missing = client.get("/api/v1/series/NOPE/signal")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "series 'NOPE' is not stored"
