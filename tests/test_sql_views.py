"""The SQL read layer: sql/views/*.sql are re-created when their text changes, and the reader may read every one."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from forecasting.db.migrations import apply_migrations, migrations_dir
from forecasting.db.views import READER_ROLE, apply_views, discover_views, views_dir

VIEWS = views_dir(migrations_dir())


def _columns(conn, view: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", (view,)
    ).fetchall()
    return [r[0] for r in rows]


def test_every_view_file_is_recorded_and_readable_by_the_reader_only(conn):
    files = discover_views(VIEWS)
    recorded = dict(conn.execute("SELECT name, checksum FROM schema_views").fetchall())
    assert recorded == {v.name: v.checksum for v in files}
    assert apply_views(conn, VIEWS) == []  # unchanged text: nothing is dropped or created
    conn.execute(f"SET ROLE {READER_ROLE}")
    try:
        for view in files:
            conn.execute(f"SELECT * FROM {view.name} LIMIT 1").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT 1 FROM schema_views")
    finally:
        conn.execute("RESET ROLE")


def test_a_changed_view_is_recreated_with_its_dependents_and_grants(conn, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrations_dir(), sql_dir / "migrations")
    shutil.copytree(VIEWS, sql_dir / "views")
    staging = sql_dir / "views" / "10_stg_observations_current.sql"
    staging.write_text(staging.read_text().replace("o.ts, o.value", "o.ts, o.value, o.recorded_at"))
    assert "recorded_at" not in _columns(conn, "stg_observations_current")

    assert apply_migrations(conn, sql_dir / "migrations") == []  # no migration, but the views changed
    assert "recorded_at" in _columns(conn, "stg_observations_current")
    # the views built on it were dropped with it and created again, and the reader still reads them
    conn.execute(f"SET ROLE {READER_ROLE}")
    try:
        conn.execute("SELECT count(*) FROM v_forecast_vs_actual").fetchone()
        conn.execute("SELECT count(*) FROM current_observations").fetchone()
    finally:
        conn.execute("RESET ROLE")
    recorded = dict(conn.execute("SELECT name, checksum FROM schema_views").fetchall())
    assert recorded["stg_observations_current"] == discover_views(sql_dir / "views")[0].checksum


def test_a_migration_that_replaces_a_view_is_followed_by_the_view_files(conn, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrations_dir(), sql_dir / "migrations")
    shutil.copytree(VIEWS, sql_dir / "views")
    (sql_dir / "migrations" / "9999_old_style_view.sql").write_text(
        "DROP VIEW v_runs CASCADE;\nCREATE VIEW v_runs AS SELECT 1 AS stale;\n", encoding="utf-8")
    assert apply_migrations(conn, sql_dir / "migrations") == ["9999_old_style_view.sql"]
    assert "stale" not in _columns(conn, "v_runs") and "interval_levels" in _columns(conn, "v_runs")


def test_a_view_file_must_define_the_view_it_is_named_after(tmp_path):
    (tmp_path / "10_v_one.sql").write_text("CREATE VIEW v_other AS SELECT 1 AS x;\n")
    with pytest.raises(ValueError, match="10_v_one.sql must define the view v_one"):
        discover_views(tmp_path)
    (tmp_path / "10_v_one.sql").unlink()
    (tmp_path / "v_one.sql").write_text("CREATE VIEW v_one AS SELECT 1 AS x;\n")
    with pytest.raises(ValueError, match="must look like 10_v_name.sql: v_one.sql"):
        discover_views(tmp_path)


def test_column_comments_give_the_units(conn):
    def comment(view: str, column: str) -> str:
        return conn.execute(
            "SELECT col_description(%s::regclass, a.attnum) FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attname = %s", (view, view, column)).fetchone()[0] or ""

    for view in ("v_backtest_metrics", "v_backtest_accuracy"):
        assert "smape and mape in percent" in comment(view, "value")
        assert "coverage_<level> a fraction" in comment(view, "value")
    assert comment("v_realised_accuracy", "smape") == "symmetric MAPE, in percent"
    assert "target's unit" in comment("champion_forecasts", "yhat")
    assert "percent" in comment("v_forecast_intervals", "level")
    assert "a fraction" in comment("v_price_forecasts", "expected_return")
