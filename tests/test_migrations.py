"""Schema migrations: applied once, recorded, re-runnable, each atomic, edits of applied files refused."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from conftest import with_dbname

from forecasting.db.migrations import apply_migrations, discover_migrations, migrations_dir


@pytest.fixture
def empty_db(pg_server):
    name = "mig_" + __import__("uuid").uuid4().hex[:8]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(with_dbname(pg_server, name), autocommit=True) as conn:
        yield conn
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _tables(conn) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_upgrade_applies_every_file_once_and_is_safe_to_rerun(empty_db):
    files = [m.path.name for m in discover_migrations()]
    assert apply_migrations(empty_db) == files
    assert apply_migrations(empty_db) == []
    recorded = empty_db.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in recorded] == [m.version for m in discover_migrations()]
    assert {"series", "series_versions", "observations", "quarantine", "ingest_runs", "ingest_results"} <= _tables(
        empty_db
    )


def test_failing_migration_leaves_no_trace(empty_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    (folder / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n", encoding="utf-8"
    )
    with pytest.raises(psycopg.errors.UndefinedFunction):
        apply_migrations(empty_db, folder)
    assert "half_done" not in _tables(empty_db)
    versions = [r[0] for r in empty_db.execute("SELECT version FROM schema_migrations").fetchall()]
    assert "9999" not in versions
    assert len(versions) == len(discover_migrations())  # the good ones before it did land


def test_editing_an_applied_migration_is_refused(empty_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    apply_migrations(empty_db, folder)
    first = sorted(folder.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=f"migration {first.name} was changed after it was applied"):
        apply_migrations(empty_db, folder)


def test_badly_named_migration_file_is_refused(tmp_path):
    (tmp_path / "add_things.sql").write_text("SELECT 1;", encoding="utf-8")
    with pytest.raises(ValueError, match="must look like 0001_name.sql: add_things.sql"):
        discover_migrations(tmp_path)
