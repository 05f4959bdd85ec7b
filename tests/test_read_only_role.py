"""The read-only role writes nothing, by any path PostgreSQL offers a role without table privileges, whether it
logs in itself (Grafana's login) or is the web app's connection trying to get more rights back (RESET ROLE), and
`forecasting serve` logs in as that role: against the real embedded PostgreSQL."""

from __future__ import annotations

import logging
import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from forecasting.db import Database, apply_migrations
from forecasting.db.views import READER_ROLE
from forecasting.web import create_app
from forecasting.web.readonly import ReadOnlyDatabase

_INV_WRITE = 0x20000  # lo_open's mode for writing

# every way to write that a role holding only SELECT on the views might have; {lo} is a large object the owner
# stored, {seq} a sequence of the schema
WRITE_PATHS = {
    "lo_create": "SELECT lo_create(0)",
    "lo_creat": "SELECT lo_creat(-1)",
    "lo_from_bytea": "SELECT lo_from_bytea(0, 'a megabyte, say')",
    "lo_import": "SELECT lo_import('/etc/hostname')",
    "lo_put into the owner's": "SELECT lo_put({lo}, 0, 'overwritten')",
    "lowrite into the owner's": f"SELECT lowrite(lo_open({{lo}}, {_INV_WRITE}), 'overwritten')",
    "lo_truncate the owner's": f"SELECT lo_truncate(lo_open({{lo}}, {_INV_WRITE}), 0)",
    "lo_unlink the owner's": "SELECT lo_unlink({lo})",
    "WAL message": "SELECT pg_logical_emit_message(true, 'reader', 'a message in the WAL')",
    "temporary table": "CREATE TEMP TABLE scratch (x int)",
    "temporary table by SELECT INTO": "SELECT 1 AS x INTO TEMP scratch",
    "temporary sequence": "CREATE TEMP SEQUENCE scratch",
    "table": "CREATE TABLE public.scratch (x int)",
    "schema": "CREATE SCHEMA scratch",
    "COPY TO PROGRAM": "COPY (SELECT 1) TO PROGRAM 'touch /tmp/forecasting-reader-wrote'",
    "COPY TO a server file": "COPY (SELECT 1) TO '/tmp/forecasting-reader-wrote'",
    "nextval": "SELECT nextval('{seq}')",
    "setval": "SELECT setval('{seq}', 1000)",
    "INSERT": "INSERT INTO series (source, name) VALUES ('reader', 'wrote')",
    "UPDATE": "UPDATE series SET frequency = 'D'",
    "DELETE": "DELETE FROM series",
    "TRUNCATE": "TRUNCATE series",
    "COPY FROM STDIN": "COPY series (source, name) FROM STDIN",
    "ALTER TABLE": "ALTER TABLE series ADD COLUMN scratch int",
    "CREATE INDEX": "CREATE INDEX scratch ON series (name)",
}


@pytest.fixture
def store(database: Database):
    """A fresh database, upgraded (its database privileges are not copied from the template), with a large
    object and a sequence of the owner's; yields the database and what the statements name."""
    with database.connect() as conn:
        apply_migrations(conn)
        lo = conn.execute("SELECT lo_from_bytea(0, 'the owner''s')").fetchone()[0]
        seq = conn.execute("SELECT pg_get_serial_sequence('series', 'series_id')").fetchone()[0]
    return database, {"lo": lo, "seq": seq}


def _reader_login(database: Database) -> psycopg.Connection:
    """The reader's own login, as Grafana has it: read-write transactions, no SET ROLE anywhere."""
    settings = conninfo_to_dict(database.url)
    settings.pop("password", None)
    return psycopg.connect(make_conninfo(**{**settings, "user": READER_ROLE}), autocommit=True)


def _nothing_was_written(database: Database, names: dict) -> None:
    with database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0] == 1
        assert conn.execute("SELECT lo_get(%s)", (names["lo"],)).fetchone()[0] == b"the owner's"
        assert conn.execute("SELECT count(*) FROM series").fetchone()[0] == 0
        assert conn.execute(f"SELECT last_value, is_called FROM {names['seq']}").fetchone() == (1, False)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'scratch'").fetchone()[0] == 0


def test_the_reader_login_can_write_nothing(store):
    database, names = store
    with _reader_login(database) as conn:
        assert conn.execute("SELECT current_setting('transaction_read_only')").fetchone()[0] == "off"
        for path, statement in WRITE_PATHS.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(**names))
                pytest.fail(f"the reader could write: {path}")
    _nothing_was_written(database, names)


def test_the_web_apps_connection_has_no_way_back_to_write_rights(store):
    """The app logs in to the embedded server as the reader: RESET ROLE leaves it the reader, the read-only
    transactions can be switched off, and still nothing can be written."""
    database, names = store
    with create_app(database).state.reader.connect() as conn:
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT current_user, session_user").fetchone() == (READER_ROLE, READER_ROLE)
        for way_back in ("SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(way_back)
        conn.execute("SET default_transaction_read_only = off")  # only a guard against mistakes
        for path, statement in WRITE_PATHS.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(**names))
                pytest.fail(f"the app's connection could write: {path}")
    _nothing_was_written(database, names)


def test_another_login_is_switched_to_the_reader_with_a_warning(database, caplog):
    """A login that is not the reader (the pipeline's URL given to the app) can only SET ROLE, which RESET ROLE
    undoes: said once, with what to do instead."""
    reader = ReadOnlyDatabase(Database(url=database.url, embedded=False))
    with caplog.at_level(logging.WARNING, logger="forecasting.web.readonly"), reader.connect() as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == (READER_ROLE, "postgres")
    assert ("switches to grafana_reader with SET ROLE: SQL that runs RESET ROLE gets postgres's rights back; set "
            "FORECASTING_WEB_DATABASE_URL to grafana_reader's own login") in caplog.text


def _served_app(monkeypatch, argv: list[str]):
    """The app `forecasting serve` would run (uvicorn stands aside)."""
    import uvicorn

    from forecasting.cli import _parser

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))
    args = _parser().parse_args(["-q", "serve", *argv])
    assert args.func(args) == 0
    return served[0]


def test_serve_logs_in_to_the_embedded_server_as_the_reader(database, monkeypatch):
    from forecasting.db import connection

    for name in ("FORECASTING_DATABASE_URL", "FORECASTING_WEB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(connection, "embedded_server_url", lambda data_dir=None: database.url)
    app = _served_app(monkeypatch, [])
    with app.state.reader.connect() as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == (READER_ROLE, READER_ROLE)


def test_serve_uses_the_configured_reader_login(store, monkeypatch):
    database, _ = store
    settings = {**conninfo_to_dict(database.url), "user": READER_ROLE}
    settings.pop("password", None)
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)  # the pipeline's own: not the app's
    monkeypatch.setenv("FORECASTING_WEB_DATABASE_URL", make_conninfo(**settings))
    app = _served_app(monkeypatch, [])
    with app.state.reader.connect() as conn:
        assert conn.execute("SELECT session_user").fetchone()[0] == READER_ROLE



def test_an_upgrade_by_the_stores_own_role_warns_what_only_a_superuser_can_revoke(pg_server, caplog):
    """A store owned and upgraded by a role of its own, as compose's is: pg_catalog's functions are the
    superuser's, so the upgrade cannot revoke them and says so, and a superuser's upgrade then does."""
    from conftest import with_dbname

    name = "owned_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN")
        admin.execute(f"CREATE DATABASE {name} OWNER {name} TEMPLATE template0")
    try:
        owner_url = make_conninfo(**{**conninfo_to_dict(with_dbname(pg_server, name)), "user": name})
        with caplog.at_level(logging.WARNING, logger="forecasting.db.migrations"), \
                psycopg.connect(owner_url, autocommit=True) as conn:
            apply_migrations(conn)
        assert (f"every role, the read-only reader included, may still run lo_creat, lo_create, lo_from_bytea, "
                f"lo_put, lo_truncate, lo_truncate64, lo_unlink, lowrite, pg_logical_emit_message in database {name}: "
                "only a superuser can revoke that") in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING), psycopg.connect(with_dbname(pg_server, name), autocommit=True) as conn:
            apply_migrations(conn)  # as the superuser
            assert conn.execute("SELECT has_function_privilege('public', 'lo_create(oid)', 'EXECUTE'), "
                                f"has_function_privilege('{name}', 'lo_create(oid)', 'EXECUTE')").fetchone() == (
                False, True)
        assert "may still run" not in caplog.text
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {name}")
