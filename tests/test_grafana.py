"""Every Grafana panel's SQL, with its template variables and macros filled in the way Grafana does, runs as
the read-only role after a real pipeline run and returns rows with the columns its panel type needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from test_pipeline import _config

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


@pytest.mark.parametrize(("board", "panel", "target"), _panels())
def test_panel_sql_returns_rows_for_the_reader(board, panel, target, database, tmp_path, conn):
    execute(
        database,
        _config(
            tmp_path, models=("naive", "seasonal_naive"), backtest={"n_windows": 2, "modes": ["latest", "as_known"]}
        ),
        command="run",
    )
    variables = {}
    for variable in board["templating"]["list"]:
        conn.execute("SET ROLE grafana_reader")
        options = conn.execute(variable["query"]).fetchall()
        conn.execute("RESET ROLE")
        assert options, f"variable {variable['name']} has no options"
        variables[variable["name"]] = options[0][0]
    sql = _expand(target["rawSql"], variables)
    conn.execute("SET ROLE grafana_reader")
    try:
        cursor = conn.execute(sql)
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
