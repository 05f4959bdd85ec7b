"""Dashboard views after a real run, and the read-only role: it reads the views and nothing else."""

from __future__ import annotations

import psycopg
import pytest
from test_pipeline import _config

from forecasting.db import apply_migrations
from forecasting.run import execute

VIEWS = [
    "v_forecast_vs_actual",
    "v_backtest_accuracy",
    "v_series_freshness",
    "v_revision_history",
    "v_pipeline_run_health",
    "v_realised_accuracy",
    "champion_forecasts",
]


@pytest.fixture
def after_run(database, tmp_path, conn):
    execute(database, _config(tmp_path, models=("naive", "seasonal_naive")), command="run")
    return conn


def test_views_hold_the_run(after_run):
    conn = after_run
    actual, forecast = conn.execute(
        "SELECT count(actual), count(yhat) FROM v_forecast_vs_actual WHERE series_name = 's0'"
    ).fetchone()
    assert (actual, forecast) == (150, 4)
    accuracy = conn.execute(
        "SELECT count(DISTINCT model) FROM v_backtest_accuracy WHERE series_name IS NULL AND metric = 'mase'"
    ).fetchone()[0]
    assert accuracy == 2
    fresh = conn.execute(
        "SELECT series_name, current_version, n_revisions, last_success_at IS NOT NULL "
        "FROM v_series_freshness ORDER BY 1"
    ).fetchall()
    assert fresh == [("s0", 1, 0, True), ("s1", 1, 0, True), ("s2", 1, 0, True)]
    kinds = {r[0]: r[1] for r in conn.execute("SELECT kind, status FROM v_pipeline_run_health").fetchall()}
    assert kinds == {"ingest": "succeeded", "run": "succeeded"}
    assert conn.execute("SELECT count(*) FROM v_revision_history").fetchone()[0] == 3
    # no actual has arrived after the forecasts yet: nothing realised to score
    assert conn.execute("SELECT count(*) FROM v_realised_accuracy").fetchone()[0] == 0


def test_grafana_reader_reads_views_only(after_run):
    conn = after_run
    conn.execute("SET ROLE grafana_reader")
    try:
        for view in VIEWS:
            conn.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()
        for table in ("observations", "series", "forecasts", "model_versions", "quarantine"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO series (source, name) VALUES ('x', 'y')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE sneaky (id int)")
    finally:
        conn.execute("RESET ROLE")


def test_grafana_reader_cannot_create_temporary_tables(database):
    # a fresh clone of the template: database privileges are not copied, so the upgrade must restore them
    with database.connect() as conn:
        apply_migrations(conn)
        conn.commit()
    with database.connect() as conn:
        conn.execute("CREATE TEMP TABLE owner_scratch (id int)")  # the owner keeps it
    with database.connect() as conn:  # a session checks the privilege once, at its first temporary table
        conn.execute("SET ROLE grafana_reader")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="temporary"):
            conn.execute("CREATE TEMP TABLE sneaky (id int)")
