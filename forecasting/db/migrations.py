"""Apply the ordered SQL files in ``sql/migrations`` once each, recording them in ``schema_migrations``.

Each file runs in its own transaction together with its bookkeeping row, so a failing migration leaves
no trace. A session advisory lock serialises concurrent upgrades (two Airflow tasks starting at once).
An applied file whose content changed afterwards is an error: history must not be rewritten. After the
migrations, the views of ``sql/views`` are re-created if their text changed (``forecasting.db.views``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from forecasting.db.sql_files import SqlFile
from forecasting.db.views import apply_views, views_dir

__all__ = [
    "WRITE_FUNCTIONS",
    "Migration",
    "apply_migrations",
    "discover_migrations",
    "migrations_dir",
    "pending_migrations",
]

_log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_UPGRADE_LOCK_KEY = 0x66_6F_72_65_63_61  # arbitrary constant: "foreca"

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration(SqlFile):
    version: str


def migrations_dir() -> Path:
    """``$FORECASTING_SQL_DIR/migrations`` if set, else ``sql/migrations`` of the source checkout."""
    configured = os.environ.get("FORECASTING_SQL_DIR")
    root = Path(configured) if configured else Path(__file__).resolve().parents[2] / "sql"
    return root / "migrations"


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"migrations folder not found: {directory} (set FORECASTING_SQL_DIR)")
    found = []
    for path in sorted(directory.iterdir()):
        match = _FILE_RE.match(path.name)
        if match:
            found.append(Migration(version=match.group(1), name=match.group(2), path=path))
        elif path.suffix == ".sql":
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
    return found


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    conn.execute(_BOOKKEEPING)
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())


def pending_migrations(conn: psycopg.Connection, directory: Path | None = None) -> list[Migration]:
    applied = _applied(conn)
    pending = []
    for migration in discover_migrations(directory):
        recorded = applied.get(migration.version)
        if recorded is None:
            pending.append(migration)
        elif recorded != migration.checksum:
            raise RuntimeError(
                f"migration {migration.path.name} was changed after it was applied "
                "(checksum differs); add a new migration instead of editing an applied one"
            )
    return pending


def apply_migrations(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Bring the schema and the views up to date; returns the migration files applied (empty when current)."""
    was_autocommit = conn.autocommit
    if not was_autocommit:
        conn.commit()
        conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_UPGRADE_LOCK_KEY,))
    try:
        applied = []
        for migration in pending_migrations(conn, directory):
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            _log.info("applied migration %s", migration.path.name)
            applied.append(migration.path.name)
        views = views_dir(directory or migrations_dir())
        if views.is_dir():  # a test's own migrations folder has no views next to it
            apply_views(conn, views, force=bool(applied))  # a migration may have replaced or dropped a view
        _restrict_temporary_tables(conn)
        _restrict_write_functions(conn)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_UPGRADE_LOCK_KEY,))
        conn.autocommit = was_autocommit


def _restrict_temporary_tables(conn: psycopg.Connection) -> None:
    """Only the schema's owner may create temporary tables in this database.

    Every role gets TEMPORARY through PUBLIC by default, the read-only dashboard role included, and a reader
    that can create objects is not read-only. Database privileges are not copied by CREATE DATABASE ...
    TEMPLATE and are not part of a dump, so this is re-applied on every upgrade rather than once in a
    migration. A role that does not own the database cannot change them; it is then left to the owner.
    """
    owner = conn.execute(
        "SELECT pg_get_userbyid(d.datdba) = current_user OR r.rolsuper FROM pg_database d "
        "JOIN pg_roles r ON r.rolname = current_user WHERE d.datname = current_database()"
    ).fetchone()
    if not owner or not owner[0]:
        _log.debug("not the database owner: leaving the TEMPORARY privilege to the owner")
        return
    database = sql.Identifier(conn.info.dbname)
    conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
    conn.execute(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO CURRENT_USER").format(database))


# Functions every role may run by default (EXECUTE to PUBLIC) that write without any table privilege: a large
# object belongs to whoever creates it, so a SELECT-only role could store data with lo_create + lo_put (a
# megabyte that persists, seen as grafana_reader), and pg_logical_emit_message writes what it is given to the WAL.
# lo_import is revoked by PostgreSQL itself; it is listed so that no deployment depends on that. Reading large
# objects (lo_get, loread) needs SELECT on one, which nobody grants the reader. Also in docker/postgres-init.sh.
WRITE_FUNCTIONS = ("lo_create", "lo_creat", "lo_from_bytea", "lo_import", "lo_put", "lowrite", "lo_truncate",
                   "lo_truncate64", "lo_unlink", "pg_logical_emit_message")


def _restrict_write_functions(conn: psycopg.Connection) -> None:
    """Only the database's owner may run the functions of ``WRITE_FUNCTIONS``.

    Re-applied on every upgrade, next to the TEMPORARY privilege, rather than once in a migration: a function's
    privileges belong to its database (CREATE DATABASE ... TEMPLATE copies them, a database created from
    template0 has the defaults again), and the pipeline's own role usually may not change them: pg_catalog's
    functions belong to the bootstrap superuser. A migration run by that role would be recorded as applied
    having done nothing, and never tried again; here the next upgrade by a superuser does it. Otherwise a
    warning says what is left open. Only functions PUBLIC may still run are touched, so a current database
    sees no catalog write.
    """
    open_to_public = [row[0] for row in conn.execute(
        "SELECT 'pg_catalog.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' "
        "FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace "
        "AND p.proname = ANY(%s) AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1",
        (list(WRITE_FUNCTIONS),)).fetchall()]
    if not open_to_public:
        return
    superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    names = ", ".join(sorted({f.removeprefix("pg_catalog.").partition("(")[0] for f in open_to_public}))
    if not superuser or not superuser[0]:
        _log.warning("every role, the read-only reader included, may still run %s in database %s: only a superuser "
                     "can revoke that (run 'forecasting db upgrade' once as one; see the README's read-only "
                     "section)", names, conn.info.dbname)
        return
    owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
                         ).fetchone()[0]
    with conn.transaction():
        for function in open_to_public:  # quoted and schema-qualified by the query above
            conn.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(sql.SQL(function)))
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(function),
                                                                            sql.Identifier(owner)))
    _log.info("only %s may now run %s", owner, names)
