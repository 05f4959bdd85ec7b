"""Resolve which PostgreSQL to use and open connections to it.

Resolution order: an explicit URL, then ``$FORECASTING_DATABASE_URL``, then the embedded server.
Credentials therefore live in the environment (or an Airflow connection), never in code or config.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from forecasting.db.embedded import embedded_server_url

__all__ = ["DATABASE_URL_ENV", "Database", "resolve_database"]

_log = logging.getLogger(__name__)

DATABASE_URL_ENV = "FORECASTING_DATABASE_URL"


def _libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) and hand libpq the plain scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base = scheme.split("+", 1)[0]
    if base == "postgres":
        base = "postgresql"
    return f"{base}://{rest}"


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database reachable by URL; ``embedded`` tells whether we started it ourselves."""

    url: str
    embedded: bool = False

    @contextmanager
    def connect(self, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode: writers group their statements in explicit transactions."""
        conn = psycopg.connect(self.url, autocommit=autocommit)
        try:
            yield conn
        finally:
            conn.close()

    def sqlalchemy_url(self) -> str:
        return "postgresql+psycopg://" + self.url.partition("://")[2]

    def engine(self):
        """A SQLAlchemy engine for pandas/analyst use; the pipeline itself uses psycopg directly."""
        import sqlalchemy

        return sqlalchemy.create_engine(self.sqlalchemy_url(), pool_pre_ping=True)


def resolve_database(url: str | None = None, *, data_dir: Path | None = None) -> Database:
    """The database to use: explicit URL, else ``$FORECASTING_DATABASE_URL``, else the embedded server."""
    url = url or os.environ.get(DATABASE_URL_ENV)
    if url:
        return Database(url=_libpq_url(url), embedded=False)
    return Database(url=embedded_server_url(data_dir), embedded=True)
