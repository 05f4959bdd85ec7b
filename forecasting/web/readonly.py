"""Connections of the web app: read-only transactions, logged in as the read-only role wherever possible.

Two guards, so a bug in a query cannot write: every transaction is READ ONLY (``default_transaction_read_only``
set at connect time, which a session may turn off again), and every connection acts as the reader role (the
role Grafana uses, which may only SELECT the views). Only a connection that logged in as the reader has no way
back to more rights: the embedded server's (which trusts its own socket, so the app logs in as the reader
there), or a deployment's own reader login (``FORECASTING_WEB_DATABASE_URL``). Any other login is switched to
the reader with ``SET ROLE``, which guards against mistakes but not against SQL that runs ``RESET ROLE``: a
warning says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from forecasting.db import Database
from forecasting.db.views import READER_ROLE

__all__ = ["ReadOnlyDatabase"]

_log = logging.getLogger(__name__)


class ReadOnlyDatabase:
    """Opens read-only connections to a database given directly or by a resolver called on first use (the
    Airflow plugin is imported by every Airflow component; only the API server ever connects)."""

    def __init__(self, database: Database | str | Callable[[], Database], *, role: str | None = READER_ROLE):
        self._source = database
        self._database: Database | None = None
        self._role = role
        self._use_role: bool | None = None  # decided on the first connection
        self._lock = threading.Lock()

    @property
    def database(self) -> Database:
        with self._lock:
            if self._database is None:
                source = self._source
                if isinstance(source, Database):
                    self._database = source
                elif isinstance(source, str):
                    self._database = Database(url=source)
                else:
                    self._database = source()
            return self._database

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        database = self.database
        settings = conninfo_to_dict(database.url)
        # added to any options the URL carries (a search_path, say), not in place of them
        settings["options"] = (str(settings.get("options", "")) + " -c default_transaction_read_only=on").strip()
        if self._role and database.embedded:
            # the server we started trusts its own socket (its folder is the boundary, as for the owner's login):
            # log in as the reader, so that no statement on the connection leads back to the owner's rights
            settings["user"] = self._role
            settings.pop("password", None)
        conn = psycopg.connect(autocommit=True, **settings)
        try:
            if self._role and self._may_become_role(conn):
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self._role)))
            yield conn
        finally:
            conn.close()

    def _may_become_role(self, conn: psycopg.Connection) -> bool:
        if self._use_role is None:
            row = conn.execute(
                "SELECT current_user = %(role)s, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s) "
                "AND pg_has_role(current_user, (SELECT oid FROM pg_roles WHERE rolname = %(role)s), 'MEMBER')",
                {"role": self._role},
            ).fetchone()
            already, member = bool(row[0]), bool(row[1])
            self._use_role = member and not already
            if not (already or member):
                _log.warning("the web app's login may not become %s: it reads in read-only transactions as %s",
                             self._role, conn.info.user)
            elif not already:
                _log.warning("the web app logs in as %s and switches to %s with SET ROLE: SQL that runs RESET ROLE "
                             "gets %s's rights back; set FORECASTING_WEB_DATABASE_URL to %s's own login",
                             conn.info.user, self._role, conn.info.user, self._role)
        return self._use_role
