"""The SQL read layer: the views in ``sql/views/NN_name.sql``, re-created whenever their text changes.

Migrations are history and never edited; views are the read API and change with it. Each file defines the view
``name`` (plus, optionally, comments on its columns), and files run in the order of their number, so a view can
build on the ones before it. The checksum of every file is kept in ``schema_views``: when any file was added,
changed or removed, every managed view is dropped and all are created again in one transaction (dropping only
the changed one would take its dependents with it), and the reader role is granted SELECT on every one of them
here, the one place grants are made.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from forecasting.db.sql_files import SqlFile

__all__ = ["READER_ROLE", "ViewFile", "apply_views", "discover_views", "views_dir"]

_log = logging.getLogger(__name__)

READER_ROLE = "grafana_reader"  # the read-only login of Grafana and the web app (sql/migrations/0003)
_FILE_RE = re.compile(r"^(\d{2})_([a-z][a-z0-9_]*)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_views (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class ViewFile(SqlFile):
    order: str


def views_dir(migrations: Path) -> Path:
    """The ``views`` folder next to a ``migrations`` folder."""
    return migrations.parent / "views"


def discover_views(directory: Path) -> list[ViewFile]:
    """The view files of ``directory`` in their numbered order; a file must define the view it is named after."""
    found = []
    for path in sorted(directory.iterdir()):
        match = _FILE_RE.match(path.name)
        if match is None:
            if path.suffix == ".sql":
                raise ValueError(f"view file name must look like 10_v_name.sql: {path.name}")
            continue
        view = ViewFile(order=match.group(1), name=match.group(2), path=path)
        if not re.search(rf"CREATE\s+VIEW\s+{re.escape(view.name)}\b", view.sql, re.IGNORECASE):
            raise ValueError(f"{path.name} must define the view {view.name} (CREATE VIEW {view.name} AS ...)")
        found.append(view)
    names = [v.name for v in found]
    if len(names) != len(set(names)):
        raise ValueError(f"two view files define the same view in {directory}")
    return found


def apply_views(conn: psycopg.Connection, directory: Path, *, force: bool = False) -> list[str]:
    """Re-create the views of ``directory`` if any file changed since the last time, or always with ``force``
    (after a migration, which may have replaced or dropped one); returns the views created (empty when nothing
    changed). ``conn`` must be in autocommit mode (the caller holds the upgrade lock)."""
    views = discover_views(directory)
    conn.execute(_BOOKKEEPING)
    recorded = dict(conn.execute("SELECT name, checksum FROM schema_views").fetchall())
    if not force and recorded == {v.name: v.checksum for v in views}:
        return []
    with conn.transaction():
        # the recorded views and any a migration made under a managed name; CASCADE takes dependents along
        for name in [*recorded, *(v.name for v in reversed(views))]:
            conn.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        for view in views:
            conn.execute(view.sql)
        _grant_reader(conn, [v.name for v in views])
        conn.execute("DELETE FROM schema_views")
        conn.cursor().executemany("INSERT INTO schema_views (name, checksum) VALUES (%s, %s)",
                                  [(v.name, v.checksum) for v in views])
    _log.info("re-created %d views from %s", len(views), directory)
    return [v.name for v in views]


def _grant_reader(conn: psycopg.Connection, names: list[str]) -> None:
    """SELECT on every view for the read-only role (created here when a fresh database has none yet)."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
    if exists is None:
        # no password here: set one out of band (docker/postgres-init.sh) from a secret
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(READER_ROLE)))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(READER_ROLE)))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
        sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.Identifier(READER_ROLE)))
