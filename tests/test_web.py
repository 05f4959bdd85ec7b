"""The web app (forecasting.web) after a real pipeline run on the embedded PostgreSQL: every API endpoint, the
JSON errors, the HTML pages and their SVG chart (counted against the API), the read-only guarantee, and
``forecasting serve`` as a real server process."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import psycopg
import pytest
from conftest import with_dbname
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_pipeline import _weekly_csv

from forecasting.cli import _parser
from forecasting.config import parse_config
from forecasting.db import Database
from forecasting.ingest.pipeline import ingest
from forecasting.run import execute
from forecasting.web import create_app
from forecasting.web.queries import top_features

LEVELS = [50, 80, 95]


def _config(folder):
    series = [{"name": f"s{i}", "source": "csv", "params": {"path": _weekly_csv(folder, f"s{i}", seed=i,
                                                                               level=100 * (i + 1))}}
              for i in range(2)]
    series.append({"name": "driver", "source": "csv", "role": "feature",
                   "params": {"path": _weekly_csv(folder, "driver", seed=7, level=50)}})
    return parse_config({
        "name": "webpipe",
        "description": "two weekly targets and a feature",
        "series": series,
        "preprocessing": {"horizon": 4, "target_lags": [1, 2, 13], "feature_lags": [1], "rolling_windows": [4]},
        "models": {"enabled": ["naive", "seasonal_naive", "lightgbm_global"],
                   "lightgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5}},
        "backtest": {"n_windows": 2, "modes": ["latest"]},
        "prediction": {"levels": LEVELS, "explain_top_k": 3},
        "ingest": {"retries": 0},
    })


@pytest.fixture(scope="module")
def store(pg_server, migrated_template, tmp_path_factory):
    """One real run (ingest, backtest, train, predict) of two targets and a feature, then a revision of s0 (so s0
    has versions 1 and 2), in a database of its own shared by this module's tests."""
    name = "web_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    database = Database(url=with_dbname(pg_server, name), embedded=True)
    folder = tmp_path_factory.mktemp("web")
    config = _config(folder)
    report = execute(database, config, command="run")
    assert report.status == "succeeded", report.errors
    _weekly_csv(folder, "s0", seed=0, level=100, revised=True)
    revised = ingest(database, config, series=["s0"])
    assert [r.outcome for r in revised.records] == ["revised"]
    yield database, report
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def client(store):
    database, _ = store
    with TestClient(create_app(database)) as test_client:
        yield test_client


def test_pipelines_and_target_series(client, store):
    _, report = store
    pipelines = client.get("/api/v1/pipelines").json()["pipelines"]
    assert [p["pipeline"] for p in pipelines] == ["webpipe"]
    assert pipelines[0]["last_run_id"] == report.run_id and pipelines[0]["last_run_status"] == "succeeded"
    assert pipelines[0]["interval_levels"] == LEVELS and pipelines[0]["n_targets"] == 2

    series = client.get("/api/v1/series", params={"pipeline": "webpipe"}).json()["series"]
    assert [s["series_name"] for s in series] == ["s0", "s1"]  # the feature series is not a target
    by_name = {s["series_name"]: s for s in series}
    assert by_name["s0"]["n_versions"] == 2 and by_name["s1"]["n_versions"] == 1
    assert by_name["s0"]["frequency"] == "W-SUN" and by_name["s0"]["last_success_at"] is not None

    unknown = client.get("/api/v1/series", params={"pipeline": "nope"})
    assert unknown.status_code == 404 and "'nope'" in unknown.json()["error"]["message"]


def test_history_current_version_and_as_of(client):
    current = client.get("/api/v1/series/s0").json()
    first = client.get("/api/v1/series/s0", params={"version": 1}).json()
    assert current["version"] == 2 and first["version"] == 1 and current["n_points"] == first["n_points"] == 150
    assert len(current["points"]) == 150
    # the revision renormalised the first half of the history
    assert current["points"][0]["value"] == pytest.approx(first["points"][0]["value"] * 1.2, rel=1e-3)
    assert current["points"][-1]["value"] == first["points"][-1]["value"]
    assert [v["reason"] for v in current["versions"]] == ["initial", "revised"]

    first_known = current["versions"][0]["created_at"]  # the instant version 1 was stored
    before = client.get("/api/v1/series/s0", params={"as_of": first_known})
    assert before.status_code == 200, before.text
    assert before.json()["version"] == 1 and before.json()["points"] == first["points"]
    too_early = client.get("/api/v1/series/s0", params={"as_of": "2000-01-01T00:00:00Z"})
    assert too_early.status_code == 404 and "no stored version" in too_early.json()["error"]["message"]
    assert client.get("/api/v1/series/s0", params={"version": 9}).status_code == 404
    bad = client.get("/api/v1/series/s0", params={"as_of": "yesterday-ish"})
    assert bad.status_code == 422
    assert "query.as_of: 'yesterday-ish' is not a timestamp" in bad.json()["error"]["message"]


def test_forecast_has_every_configured_level(client, store):
    _, report = store
    forecast = client.get("/api/v1/series/s1/forecast").json()
    assert forecast["run_id"] == report.run_id and forecast["pipeline"] == "webpipe"
    assert forecast["model"] in {"naive", "seasonal_naive", "lightgbm_global"}
    assert isinstance(forecast["model_version_id"], int)
    assert forecast["levels"] == forecast["configured_levels"] == LEVELS
    assert [p["step"] for p in forecast["points"]] == [1, 2, 3, 4]
    for point in forecast["points"]:
        assert set(point["intervals"]) == {"50", "80", "95"}
        b50, b80, b95 = (point["intervals"][str(level)] for level in LEVELS)
        assert b95["lower"] <= b80["lower"] <= b50["lower"] <= point["yhat"] <= b50["upper"] <= b80["upper"] \
            <= b95["upper"]
    same = client.get("/api/v1/series/s1/forecast", params={"run": report.run_id}).json()
    assert same["points"] == forecast["points"] and same["model"] == forecast["model"]
    missing = client.get("/api/v1/series/s1/forecast", params={"run": 999})
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "run 999 is not known"


def test_top_shap_features_of_the_tree_model(client, store):
    database, report = store
    with database.connect() as conn:
        version = conn.execute("SELECT model_version_id FROM v_run_forecasts WHERE run_id = %s "
                               "AND series_name = 's1' AND model = 'lightgbm_global' LIMIT 1",
                               (report.run_id,)).fetchone()[0]
        features = top_features(conn, name="s1", source="csv", run_id=report.run_id, model_version_id=version)
    assert 1 <= len(features) <= 10 and all(f["n_steps"] >= 1 for f in features)
    assert [f["mean_abs_shap"] for f in features] == sorted((f["mean_abs_shap"] for f in features), reverse=True)


def test_backtest_leaderboard_by_metric_and_step(client, store):
    _, report = store
    board = client.get("/api/v1/series/s0/backtest").json()
    assert board["run_id"] == report.run_id and board["ranked_by"] == "mase" and board["mode"] == "latest"
    models = [m["model"] for m in board["models"]]
    assert sorted(models) == ["lightgbm_global", "naive", "seasonal_naive"]
    scores = [m["metrics"]["mase"] for m in board["models"]]
    assert scores == sorted(scores) and [m["rank"] for m in board["models"]] == [1, 2, 3]
    assert board["champion"]["model"] == models[0]
    assert board["champion"]["strategy"] in ("per_series", "robust", "pooled")  # how the run chose it
    assert all([s["step"] for s in m["steps"]] == [1, 2, 3, 4] for m in board["models"])
    assert {"smape", "mae", "coverage_80"} <= set(board["models"][0]["metrics"])
    by_smape = client.get("/api/v1/series/s0/backtest", params={"metric": "smape"}).json()
    smape = [m["metrics"]["smape"] for m in by_smape["models"]]
    assert by_smape["ranked_by"] == "smape" and smape == sorted(smape)
    assert client.get("/api/v1/series/s0/backtest", params={"metric": "nope"}).status_code == 400
    assert client.get("/api/v1/series/s0/backtest", params={"mode": "bogus"}).status_code == 422


def test_runs(client, store):
    _, report = store
    runs = client.get("/api/v1/runs").json()
    assert [r["run_id"] for r in runs["runs"]] == [report.run_id]
    run = runs["runs"][0]
    assert run["status"] == "succeeded" and run["n_forecast_series"] == 2 and run["n_skipped_series"] == 0
    assert [r["status"] for r in runs["ingest_runs"]] == ["succeeded", "succeeded"]
    assert runs["airflow_runs"] == []


def test_unknown_series_is_a_json_404_naming_it(client):
    for path in ("/api/v1/series/no_such", "/api/v1/series/no_such/forecast", "/api/v1/series/no_such/backtest"):
        response = client.get(path)
        assert response.status_code == 404 and response.headers["content-type"] == "application/json"
        assert response.json() == {"error": {"status": 404, "message": "series 'no_such' is not stored"}}
    not_a_price = client.get("/api/v1/series/s0/signal")
    assert not_a_price.status_code == 404
    assert not_a_price.json()["error"]["message"] == "series 's0' is not a price series (source yahoo_finance)"
    page = client.get("/series/no_such")
    assert page.status_code == 404 and "series &#39;no_such&#39; is not stored" in page.text


ENDPOINTS = ["/api/v1/pipelines", "/api/v1/series", "/api/v1/series/s0", "/api/v1/series/s0/forecast",
             "/api/v1/series/s0/backtest", "/api/v1/series/s0/signal", "/api/v1/runs", "/", "/series/s0", "/runs"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("parameter", ["pipeline", "source", "metric"])
def test_a_nul_byte_in_a_query_parameter_is_a_422_naming_it(client, path, parameter):
    """PostgreSQL text cannot hold a NUL byte: before, the query failed and the answer was a plain-text 500."""
    response = client.get(path, params={parameter: "a\x00b"})
    assert response.status_code == 422, response.text
    message = f"query.{parameter}: contains a NUL byte, which no name or value can hold"
    if path.startswith("/api/"):
        assert response.json() == {"error": {"status": 422, "message": message, "detail": [message]}}
    else:
        assert response.headers["content-type"].startswith("text/html") and message in response.text


@pytest.mark.parametrize("path", ["/api/v1/series/%00", "/api/v1/series/%00/forecast", "/api/v1/series/s%000/backtest",
                                  "/api/v1/series/%00/signal", "/series/%00"])
def test_a_nul_byte_in_the_series_name_is_a_422_naming_it(client, path):
    response = client.get(path)
    assert response.status_code == 422
    assert "path.name: contains a NUL byte" in (response.json()["error"]["message"] if "/api/" in path
                                                 else response.text)


@pytest.mark.parametrize(("query", "status", "message"), [
    ({"as_of": "nan"}, 422, "query.as_of: 'nan' is not a timestamp"),
    ({"as_of": ""}, 422, "query.as_of: '' is not a timestamp"),
    ({"as_of": "NaT"}, 422, "query.as_of: 'NaT' is not a timestamp"),
    ({"as_of": "-1"}, 422, "query.as_of: '-1' is not a timestamp"),  # a year datetime cannot hold
    ({"version": "nan"}, 422, "query.version: Input should be a valid integer"),
    ({"version": ""}, 422, "query.version: Input should be a valid integer"),
    ({"version": "0"}, 422, "query.version: Input should be greater than or equal to 1"),
    ({"version": "99999999999999999999"}, 404, "series 's0' has no version 99999999999999999999"),
])
def test_an_invalid_as_of_or_version_is_a_4xx_naming_it(client, query, status, message):
    response = client.get("/api/v1/series/s0", params=query)
    assert response.status_code == status and response.headers["content-type"] == "application/json"
    assert response.json()["error"]["message"].startswith(message)


@pytest.mark.parametrize("path", ["/api/v1/series/s0/forecast", "/api/v1/series/s0/backtest", "/series/s0"])
@pytest.mark.parametrize(("run", "status", "message"), [
    ("nan", 422, "query.run: Input should be a valid integer"),
    ("", 422, "query.run: Input should be a valid integer"),
    ("-1", 404, "run -1 is not known"),
    ("99999999999999999999", 404, "run 99999999999999999999 is not known"),
])
def test_an_invalid_run_is_a_4xx_naming_it(client, path, run, status, message):
    response = client.get(path, params={"run": run})
    assert response.status_code == status
    assert message in (response.json()["error"]["message"] if "/api/" in path else response.text)


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/pipelines", "/api/v1/series", "/api/v1/series/{name}", "/api/v1/series/{name}/forecast",
            "/api/v1/series/{name}/backtest", "/api/v1/series/{name}/signal", "/api/v1/runs"} == set(paths)
    assert client.get("/docs").status_code == 200


def test_series_page_chart_draws_what_the_api_returns(client):
    history = client.get("/api/v1/series/s0").json()
    forecast = client.get("/api/v1/series/s0/forecast").json()
    page = client.get("/series/s0")
    assert page.status_code == 200
    svg = re.search(r'<svg [^>]*class="forecast-chart".*?</svg>', page.text, re.S).group(0)
    recent = re.search(r'<svg [^>]*class="forecast-chart-recent".*?</svg>', page.text, re.S).group(0)
    assert recent.count('class="actual-point"') == 40 and recent.count('class="forecast-point"') == 4
    assert svg.count('class="actual-point"') == history["n_points"] == 150
    assert svg.count('class="forecast-point"') == len(forecast["points"]) == 4
    assert re.findall(r'<path class="band" data-level="(\d+)"', svg) == ["95", "80", "50"]  # one band per level
    assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
    assert "<table class=\"leaderboard\">" in page.text and "(champion)" in page.text
    strategy = client.get("/api/v1/series/s0/backtest").json()["champion"]["strategy"]
    said = re.search(r'<p class="chosen-by">(.*?)</p>', page.text, re.S).group(1)
    assert f"chosen by the <strong>{strategy}</strong>" in said and len(said) > 80  # and what that rule means
    assert page.text.count("<tr><td class=\"num\"><a href") == 2  # versions 1 and 2


def test_index_and_runs_pages(client, store):
    _, report = store
    index = client.get("/")
    assert index.status_code == 200
    assert 'data-pipeline="webpipe"' in index.text and 'href="/series/s0?source=csv"' in index.text
    assert "/series/driver" not in index.text  # features are not listed
    runs = client.get("/runs")
    assert runs.status_code == 200 and f'<td class="num">{report.run_id}</td>' in runs.text


def test_the_app_never_writes(store):
    """Every connection is a read-only transaction as the reader role, and serving every endpoint assigns no
    transaction id anywhere on the server (a write would)."""
    database, report = store
    app = create_app(database)
    with app.state.reader.connect() as conn:
        assert conn.execute("SELECT current_user, current_setting('transaction_read_only')").fetchone() == (
            "grafana_reader", "on")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE t (x int)")
    with database.connect() as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall():
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")  # ANALYZE would take an xid
        next_xid = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())").fetchone()[0]
        with TestClient(app) as client:
            for path in ("/api/v1/pipelines", "/api/v1/series", "/api/v1/series/s0", "/api/v1/series/s0/forecast",
                         f"/api/v1/series/s0/forecast?run={report.run_id}", "/api/v1/series/s0/backtest",
                         "/api/v1/runs", "/", "/series/s0", "/runs"):
                assert client.get(path).status_code == 200, path
        assert conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())").fetchone()[0] == next_xid


def test_serve_binds_loopback_by_default():
    args = _parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8765)


def test_forecasting_serve_answers_the_api(store, tmp_path):
    """As the README says to run it against a server of one's own: with the reader's login for the app."""
    database, _ = store
    port = _free_port()
    reader = {**conninfo_to_dict(database.url), "user": "grafana_reader"}
    reader.pop("password", None)
    env = {**os.environ, "FORECASTING_DATABASE_URL": database.url,
           "FORECASTING_WEB_DATABASE_URL": make_conninfo(**reader)}
    cli = shutil.which("forecasting", path=os.path.dirname(sys.executable))
    server = subprocess.Popen([cli, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/pipelines", timeout=5) as response:
                    body = response.read().decode()
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.5)
        assert body is not None and '"pipeline":"webpipe"' in body
    finally:
        server.terminate()
        server.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_read_only_is_added_to_the_options_a_url_carries(store):
    database, _ = store
    url = database.url + "&options=-c%20statement_timeout%3D12345"
    with create_app(url).state.reader.connect() as conn:
        assert conn.execute("SELECT current_setting('statement_timeout'), current_setting('transaction_read_only')"
                            ).fetchone() == ("12345ms", "on")
