"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh migrated database per test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import psycopg
import pytest

from forecasting.db import Database, apply_migrations
from forecasting.db.embedded import embedded_server_url, stop_embedded_server

_TEMPLATE = "forecasting_template"


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def pg_server() -> str:
    """URL of the maintenance database of a real PostgreSQL started for this test session.

    Its folder is not under pytest's tmp root: pytest keeps that root 0700, which the unprivileged user
    the server runs as (when tests run as root) cannot traverse.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="forecasting-test-pg-"))
    url = embedded_server_url(data_dir)
    yield url
    stop_embedded_server(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> str:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {_TEMPLATE}")
    with psycopg.connect(with_dbname(pg_server, _TEMPLATE)) as conn:
        apply_migrations(conn)
    return _TEMPLATE


@pytest.fixture
def database(pg_server: str, migrated_template: str) -> Database:
    """A fresh database with the schema applied, dropped after the test."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    yield Database(url=with_dbname(pg_server, name), embedded=True)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def conn(database: Database):
    with database.connect() as connection:
        yield connection


def make_series(n: int = 20, *, start: str = "2024-01-01", freq: str = "D", seed: int = 0) -> pd.DataFrame:
    """A seeded canonical frame (ts, value) with positive values."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq)
    return pd.DataFrame({"ts": ts.astype("datetime64[ns]"), "value": 50 + rng.normal(0, 5, n).cumsum().round(3)})


def as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that is to be stopped with SIGINT, as Ctrl+C in a terminal would.

    A child inherits an ignored SIGINT (pytest started in the background by a non-interactive shell, as some CI
    runners do), and neither bash nor Python can then handle it: the child would never see the Ctrl+C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
