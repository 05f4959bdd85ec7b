"""Every Grafana panel's SQL, with its template variables and macros filled in the way Grafana does, runs as
the read-only role after a real pipeline run and returns rows with the columns its panel type needs."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml
from conftest import with_dbname
from test_pipeline import _config, _weekly_csv

from forecasting.db import Database
from forecasting.run import execute

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
WIDE = "'1900-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'"


def _expand(sql: str, variables: dict[str, str]) -> str:
    """Grafana's macros for the PostgreSQL datasource, over a time range wide enough for any test data."""
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {WIDE}", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*'1d'\)", r"date_trunc('day', \1) AS time", sql)
    for name, value in variables.items():
        sql = sql.replace(f"${name}", value)
    assert "$" not in sql, sql
    return sql


def _targets():
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield path.stem, board, panel, target


def _panels():
    return [pytest.param(b, p, t, id=f"{stem}:{p['id']}") for stem, b, p, t in _targets()]


def test_provisioning_files_are_consistent():
    datasource = yaml.safe_load((ROOT / "grafana/provisioning/datasources/forecasting.yaml").read_text())
    source = datasource["datasources"][0]
    assert source["user"] == "grafana_reader" and "password" not in source
    assert source["secureJsonData"]["password"] == "${GRAFANA_READER_PASSWORD}"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/forecasting.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)) == 4
    for _, _, panel, target in _targets():
        assert panel["datasource"]["uid"] == target["datasource"]["uid"] == source["uid"]


@pytest.fixture(scope="module")
def after_run(pg_server, migrated_template, tmp_path_factory):
    """One real run shared by every panel (the panels only read): three weekly targets and one that cannot be
    modelled (constant: a skipped series), plus one Airflow DAG run as the plugin's listener records it."""
    name = "grafana_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    database = Database(url=with_dbname(pg_server, name), embedded=True)
    folder = tmp_path_factory.mktemp("grafana")
    short = folder / "short.csv"
    pd.DataFrame({"ts": pd.date_range("2022-01-02", periods=8, freq="W-SUN").strftime("%Y-%m-%d"),
                  "value": [7.0] * 8}).to_csv(short, index=False)
    series = [{"name": f"s{i}", "source": "csv",
               "params": {"path": _weekly_csv(folder, f"s{i}", seed=i, level=100 * (i + 1))}} for i in range(3)]
    series.append({"name": "short", "source": "csv", "params": {"path": str(short)}})
    report = execute(database, _config(folder, models=("naive", "seasonal_naive"), series=series,
                                       backtest={"n_windows": 2, "modes": ["latest", "as_known"]}), command="run")
    assert report.status == "partial" and list(report.skipped_series["series"]) == ["short"]
    with database.connect() as conn:
        conn.execute("INSERT INTO airflow_dag_runs (dag_id, run_id, run_type, state, started_at, finished_at, "
                     "n_tasks, n_success, n_failed) VALUES ('forecasting_pipe_train', 'manual__1', 'manual', "
                     "'success', now() - interval '1 minute', now(), 6, 6, 0)")
    yield database
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.parametrize(("board", "panel", "target"), _panels())
def test_panel_sql_returns_rows_for_the_reader(board, panel, target, after_run):
    with after_run.connect() as conn:
        _check_panel(conn, board, panel, target)


def _check_panel(conn, board, panel, target):
    variables = {}
    conn.execute("SET ROLE grafana_reader")
    try:
        for variable in board["templating"]["list"]:  # in order: a variable's query may use the ones before it
            options = conn.execute(_expand(variable["query"], variables)).fetchall()
            assert options, f"variable {variable['name']} has no options"
            variables[variable["name"]] = options[0][0]
        cursor = conn.execute(_expand(target["rawSql"], variables))
        rows = cursor.fetchall()
        columns = [d.name for d in cursor.description]
    finally:
        conn.execute("RESET ROLE")
    if "Realised" in panel["title"]:
        assert rows == []  # no actual arrives after a forecast within one test run
        return
    assert rows, f"{panel['title']}: no rows"
    if target["format"] == "time_series":
        assert columns[0] == "time"
        values = [v for row in rows for v in row[1:] if not isinstance(v, str)]
        assert values and all(isinstance(v, int | float) or v is None for v in values)


def test_every_dashboard_has_the_pipeline_variable_and_the_series_picker_lists_targets_only(after_run):
    boards = [json.loads(p.read_text()) for p in DASHBOARDS]
    for board in boards:
        assert board["templating"]["list"][0]["name"] == "pipeline", board["uid"]
    for _, _, panel, target in _targets():  # every panel reads the chosen pipeline (the chart: its series)
        assert "$pipeline" in target["rawSql"] or "$series" in target["rawSql"], panel["title"]
    forecast = next(b for b in boards if b["uid"] == "forecasting-forecast")
    picker = next(v for v in forecast["templating"]["list"] if v["name"] == "series")
    with after_run.connect() as conn:
        conn.execute("INSERT INTO series (source, name, config_name) VALUES ('csv', 'a_feature', 'pipe')")
        options = [r[0] for r in conn.execute(_expand(picker["query"], {"pipeline": "pipe"})).fetchall()]
    assert options == ["s0", "s1", "s2", "short"]  # targets of the pipeline's config only


def test_the_forecast_chart_shows_every_level_and_its_time_range_follows_the_series(after_run):
    board = json.loads((ROOT / "grafana/dashboards/forecast.json").read_text())
    chart, table = board["panels"][0], board["panels"][1]
    with after_run.connect() as conn:
        values = {"pipeline": "pipe", "series": "s0"}
        metrics = {r[0] for r in conn.execute(
            f"SELECT DISTINCT metric FROM ({_expand(chart['targets'][0]['rawSql'], values)}) q").fetchall()}
        assert metrics == {"actual", "forecast", "lower 80%", "upper 80%", "lower 95%", "upper 95%"}
        cursor = conn.execute(_expand(table["targets"][0]["rawSql"], values))
        rows = {r[0]: r for r in cursor.fetchall()}
        names = [d.name for d in cursor.description]
        first, last = conn.execute("SELECT min(ts), max(ts) FROM stg_observations_current WHERE series_name = 's0'"
                                   ).fetchone()
        last_forecast = conn.execute("SELECT max(ts) FROM champion_forecasts WHERE series_name = 's0'").fetchone()[0]
    row = dict(zip(names, rows["s0"], strict=True))
    assert row["from_ms"] == int(pd.Timestamp(first).timestamp() * 1000)
    assert row["to_ms"] == int(pd.Timestamp(last_forecast).timestamp() * 1000) > int(pd.Timestamp(last).timestamp())
    link = table["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["url"]
    assert "from=${__data.fields.from_ms}&to=${__data.fields.to_ms}" in link
