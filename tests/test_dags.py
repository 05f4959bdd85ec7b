"""Airflow DAGs: they load, parse fast without heavy imports, and run end to end with dag.test() against the
real embedded PostgreSQL. Airflow runs in subprocesses with their own AIRFLOW_HOME (SQLite metadata)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecasting.steps.table import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"


def _airflow_env(tmp_path: Path, config_dir: Path, database_url: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "GRAFANA_URL": "http://grafana.test:3000",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "FORECASTING_CONFIG_DIR": str(config_dir),
        }
    )
    if database_url:
        env["FORECASTING_DATABASE_URL"] = database_url
    return env


def _python(code: str, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _airflow(args: list[str], env: dict) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run([str(airflow), *args], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _dag_test(code: str, env: dict) -> tuple[str, str]:
    """Migrate Airflow's metadata, serialise the DAGs and run ``code`` (which runs ``dag.test()`` and prints
    one ``RESULT ...`` line). Returns what follows ``RESULT `` and the whole output."""
    _airflow(["db", "migrate"], env)
    _airflow(["dags", "reserialize"], env)
    result = _python(code, env)
    output = result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout[-4000:] + result.stderr[-4000:]
    return lines[-1][len("RESULT ") :], output


@contextlib.contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A loopback HTTP server with ``handler`` for the length of the block; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_dagbag_loads_every_dag_of_the_demo_config(tmp_path):
    result = _python(
        """
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder="dags")
        print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                          "dags": {d.dag_id: {"tags": sorted(d.tags),
                                              "schedule": str(getattr(d.timetable, "summary", d.timetable)),
                                              "retries": [t.retries for t in d.tasks],
                                              "graph": {t.task_id: {
                                                  "up": sorted(t.upstream_task_ids),
                                                  "rule": getattr(t.trigger_rule, "value", t.trigger_rule)}
                                                  for t in d.tasks},
                                              "params": {k: d.params.get_param(k).schema for k in d.params}}
                                   for d in bag.dags.values()}}))
    """,
        _airflow_env(tmp_path, ROOT / "examples"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert sorted(report["dags"]) == ["forecasting_demo_ingest", "forecasting_demo_predict", "forecasting_demo_train"]
    for dag in report["dags"].values():
        assert "forecasting" in dag["tags"] and "demo" in dag["tags"]
        assert min(dag["retries"]) >= 2
    # "@weekly" becomes a cron trigger: ingest downloads the latest data, it needs no data interval
    assert "expression='0 0 * * 0'" in report["dags"]["forecasting_demo_ingest"]["schedule"]
    assert "Asset" in report["dags"]["forecasting_demo_train"]["schedule"]
    # the train DAG's graph shows the steps: partitions flow plan -> features -> backtest -> select -> train -> publish;
    # a partition's failed step never holds back the others (all_done), publish reports it
    train = report["dags"]["forecasting_demo_train"]["graph"]
    assert {k: v["up"] for k, v in train.items()} == {
        "plan": [], "features": ["plan"], "backtest": ["features", "plan"], "select": ["backtest", "plan"],
        "train": ["plan", "select"], "publish": ["plan", "train"]}
    assert {k for k, v in train.items() if v["rule"] == "all_done"} == {"backtest", "select", "train", "publish"}
    # the DAGs run the steps in the order the CLI runs them: both read forecasting.steps.table
    for command, graph in (("train", train), ("predict", report["dags"]["forecasting_demo_predict"]["graph"])):
        order = ["plan", *COMMANDS[command], "publish"]
        assert all(before in graph[after]["up"] for before, after in zip(order, order[1:], strict=False))
    predict = report["dags"]["forecasting_demo_predict"]["graph"]
    assert {k: v["up"] for k, v in predict.items()} == {"plan": [], "predict": ["plan"], "publish": ["plan", "predict"]}
    # trigger parameters are optional and offer the config's series / the model names as choices
    series = report["dags"]["forecasting_demo_ingest"]["params"]["series"]
    assert "null" in series["type"] and series["examples"] == ["co2", "us_realgdp", "us_cpi", "us_unemployment"]
    models = report["dags"]["forecasting_demo_predict"]["params"]["models"]
    assert "null" in models["type"] and "lightgbm_global" in models["examples"]
    assert "null" in report["dags"]["forecasting_demo_predict"]["params"]["horizon"]["type"]


def test_dag_file_parses_in_under_a_second_without_heavy_imports(tmp_path):
    result = _python(
        """
        import importlib.util, json, sys, time
        import airflow.sdk  # Airflow itself is loaded by the dag-processor anyway
        started = time.perf_counter()
        spec = importlib.util.spec_from_file_location("dag_file", "dags/forecasting_pipeline.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        heavy = sorted(m for m in ("pandas", "lightgbm", "great_expectations", "yfinance", "pytrends", "shap")
                       if m in sys.modules)
        print(json.dumps({"seconds": time.perf_counter() - started, "heavy": heavy}))
    """,
        _airflow_env(tmp_path, ROOT / "examples"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["seconds"] < 1.0


def test_an_airflow_variable_points_the_dags_at_another_configs_folder(tmp_path, pipeline_configs):
    env = _airflow_env(tmp_path, ROOT / "examples")  # the env var says examples/, the Variable wins
    env["AIRFLOW_VAR_FORECASTING_CONFIG_DIR"] = str(pipeline_configs)
    result = _python(
        """
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder="dags")
        predict = bag.dags["forecasting_af_predict"].timetable
        print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags),
                          "predict": [type(predict).__name__, predict.timetable.expression,
                                      [a.name for a in predict.asset_condition.objects]]}))
    """,
        env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dags"] == ["forecasting_af_ingest", "forecasting_af_predict", "forecasting_af_train"]
    # prediction.schedule: the predict DAG runs after each training and on its own clock
    assert report["predict"] == ["AssetOrTimeSchedule", "0 6 * * *", ["forecasting_af_models"]]


def test_each_source_is_one_mapped_task_in_its_own_pool(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "mixed.yaml").write_text(textwrap.dedent("""
        name: mixed
        series:
          - {name: flu, source: google_trends, params: {keyword: flu}}
          - {name: aapl, source: yahoo_finance, params: {ticker: AAPL}}
          - {name: co2, source: sample, params: {dataset: co2}}
    """), encoding="utf-8")
    result = _python(
        """
        import json
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder="dags").dags["forecasting_mixed_ingest"]
        print(json.dumps({t.task_id: t.pool for t in dag.tasks}))
    """,
        _airflow_env(tmp_path, configs),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pools = json.loads(result.stdout.strip().splitlines()[-1])
    assert {task: pool for task, pool in pools.items() if task.startswith("ingest_")} == {
        "ingest_google_trends": "google_trends", "ingest_yahoo_finance": "yahoo_finance",
        "ingest_sample": "default_pool"}
    assert {"plan_google_trends", "plan_yahoo_finance", "plan_sample", "publish", "check"} <= set(pools)


def test_a_series_subset_skips_the_other_sources_and_still_publishes(tmp_path, database, conn):
    configs = tmp_path / "configs"
    configs.mkdir()
    data = tmp_path / "s.csv"
    data.write_text("ts,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 29)), encoding="utf-8")
    (configs / "two.yaml").write_text(textwrap.dedent(f"""
        name: two
        series:
          - {{name: s, source: csv, params: {{path: {data}}}}}
          - {{name: co2, source: sample, params: {{dataset: co2}}, missing_values: drop}}
    """), encoding="utf-8")
    result, output = _dag_test(
        """
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder="dags").get_dag("forecasting_two_ingest")
        run = dag.test(run_conf={"series": ["s"]})
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        again = {ti.task_id: str(ti.state) for ti in dag.test(run_conf={"series": ["s"]}).get_task_instances()}
        print("RESULT", run.state, states["ingest_sample"], states["publish"], states["check"], again["publish"])
    """,
        _airflow_env(tmp_path, configs, database.url),
    )
    # the second run stores nothing new, but nothing was trained on s yet: publish still emits the Asset, saying why
    assert result.split() == ["success", "skipped", "success", "success", "success"]
    assert ("no series changed in this run's ingest; 1 of 1 partition(s) lack current models: the data Asset is "
            "emitted, training runs\n  D:1/1: no training of this partition has succeeded yet") in output
    assert "1 series changed in this run's ingest: s; 1 of 1 partition(s) lack current models" in output
    assert conn.execute("SELECT name FROM series ORDER BY 1").fetchall() == [("s",)]


@pytest.fixture
def pipeline_configs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    import numpy as np
    import pandas as pd

    ts = pd.date_range("2021-01-03", periods=80, freq="W-SUN").strftime("%Y-%m-%d")
    for i in range(2):
        values = 100 + 10 * i + np.random.default_rng(i).normal(0, 1, 80).cumsum()
        pd.DataFrame({"ts": ts, "value": values.round(3)}).to_csv(data / f"s{i}.csv", index=False)
    pd.DataFrame({"ts": ts, "value": 7.0}).to_csv(data / "flat.csv", index=False)
    pd.DataFrame({"ts": ts[:5], "value": [1.0, 2.0, 3.0, 2.0, 1.0]}).to_csv(data / "short.csv", index=False)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "af.yaml").write_text(
        textwrap.dedent("""
        name: af
        series:
          - {name: s0, source: csv, params: {path: ../data/s0.csv}}
          - {name: s1, source: csv, params: {path: ../data/s1.csv}}
          - {name: broken, source: csv, params: {path: ../data/missing.csv}}
          - {name: flat, source: csv, params: {path: ../data/flat.csv}}
          - {name: short, source: csv, params: {path: ../data/short.csv}}
        preprocessing: {horizon: 3, target_lags: [1, 2, 3]}
        models: {enabled: [naive, seasonal_naive]}
        modeling: {partition_size: 2}
        backtest: {n_windows: 2, modes: [latest]}
        prediction: {schedule: "0 6 * * *"}
        ingest: {shard_size: 2}
    """),
        encoding="utf-8",
    )
    return configs


def test_dags_run_end_to_end_and_a_failing_series_fails_the_run_by_name(tmp_path, pipeline_configs, database, conn):
    result, output = _dag_test(
        """
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder="dags")
        states = {}
        conf = {"forecasting_af_predict": {"horizon": 2}}  # a manual trigger's parameter
        for dag_id in ("forecasting_af_ingest", "forecasting_af_train", "forecasting_af_predict"):
            run = bag.get_dag(dag_id).test(run_conf=conf.get(dag_id))
            states[dag_id] = {"state": str(run.state),
                              "tasks": {f"{ti.task_id}[{ti.map_index}]": str(ti.state)
                                        for ti in run.get_task_instances()},
                              "labels": sorted(f"{ti.task_id}: {ti.rendered_map_index}"
                                               for ti in run.get_task_instances() if ti.map_index >= 0)}
        print("RESULT " + json.dumps(states))
    """,
        _airflow_env(tmp_path, pipeline_configs, database.url),
    )
    states = json.loads(result)

    ingest = states["forecasting_af_ingest"]
    assert ingest["state"] == "failed"  # the check task names the broken series
    assert ingest["tasks"]["check[-1]"] == "failed"
    assert ingest["tasks"]["publish[-1]"] == "success"  # the good series were stored and announced
    assert sorted(k for k in ingest["tasks"] if k.startswith("ingest_")) == [f"ingest_csv[{i}]" for i in range(3)]
    assert "series failed: broken: [csv:broken] CSV file not found" in output
    assert ingest["labels"] == ["ingest_csv: csv: broken, flat", "ingest_csv: csv: s0, s1", "ingest_csv: csv: short"]
    table = output[output.index("per series:"):].splitlines()  # each shard logs its outcome table
    assert table[1].split() == ["series", "outcome", "rows", "detail"]
    outcomes = dict(conn.execute("SELECT series_name, outcome FROM ingest_results").fetchall())
    assert outcomes == {"s0": "initial", "s1": "initial", "broken": "failed", "flat": "initial", "short": "initial"}
    triggered = {r[0].split(":")[1] for r in conn.execute("SELECT triggered_by FROM ingest_runs").fetchall()}
    assert triggered == {"forecasting_af_ingest"}

    train = states["forecasting_af_train"]
    assert train["state"] == "success"
    assert {k.split("[")[0] for k in train["tasks"]} == {"plan", "features", "backtest", "select", "train", "publish"}
    partitions = ["W-SUN partition 1 of 2 (2 series)", "W-SUN partition 2 of 2 (2 series)"]
    assert train["labels"] == sorted(f"{step}: {p}" for step in ("features", "backtest", "train") for p in partitions)
    predict = states["forecasting_af_predict"]
    assert predict["state"] == "success"
    assert predict["labels"] == [f"predict: {p}" for p in partitions]

    # the constant series was skipped with its reason; the 5-point one is forecast by the models that can take it
    skipped = dict(conn.execute(
        "SELECT series_name, reason FROM v_series_skips k JOIN pipeline_runs r USING (run_id) "
        "WHERE r.command = 'train' AND k.model IS NULL").fetchall())
    assert skipped.keys() == {"flat"}
    assert skipped["flat"].startswith("constant series")
    statuses = dict(conn.execute("SELECT command, status FROM pipeline_runs").fetchall())
    assert statuses == {"train": "partial", "predict": "partial"}
    assert "series flat skipped (features): constant series" in output
    versions = conn.execute("SELECT count(*), count(DISTINCT run_id) FROM model_versions").fetchone()
    assert versions == (2 * 2, 1)  # two models for each partition, registered by training only
    forecasts = conn.execute(
        "SELECT count(*), count(DISTINCT series_id) FROM forecasts f JOIN pipeline_runs r USING (run_id) "
        "WHERE r.command = 'predict'"
    ).fetchone()
    assert forecasts == (2 * 3 * 2, 3)  # 2 models x 3 series x horizon 2 (the trigger's, not the config's 3)

    # the champion chosen by the backtest run is published with the predict run's forecasts
    published = conn.execute("SELECT series_name, count(*) FROM champion_forecasts GROUP BY 1 ORDER BY 1").fetchall()
    assert published == [("s0", 2), ("s1", 2), ("short", 2)]

    # the plugin's listener recorded every run as Airflow finished it
    recorded = dict(conn.execute("SELECT dag_id, state FROM airflow_dag_runs").fetchall())
    assert recorded == {
        "forecasting_af_ingest": "failed",
        "forecasting_af_train": "success",
        "forecasting_af_predict": "success",
    }
    failed_tasks = conn.execute(
        "SELECT n_failed FROM airflow_dag_runs WHERE dag_id = 'forecasting_af_ingest'"
    ).fetchone()[0]
    assert failed_tasks == 1  # the check task


def test_after_the_cli_run_ingest_starts_training_only_when_models_are_not_current(tmp_path, database, conn,
                                                                                   monkeypatch):
    """The README's Airflow walkthrough after its CLI run. The CLI's models are current for the data, settings and
    code: an ingest that changes nothing emits no data Asset. Once the registered models no longer match (here the
    config's backtest changed), the same unchanged ingest emits it, the train DAG queues, and train and predict run."""
    from forecasting.cli import main as cli_main

    configs, data = tmp_path / "configs", tmp_path / "data"
    configs.mkdir()
    data.mkdir()
    import numpy as np
    import pandas as pd

    ts = pd.date_range("2022-01-02", periods=60, freq="W-SUN").strftime("%Y-%m-%d")
    for i in range(2):
        values = 50 + 10 * i + np.random.default_rng(i).normal(0, 1, 60).cumsum()
        pd.DataFrame({"ts": ts, "value": values.round(3)}).to_csv(data / f"s{i}.csv", index=False)
    config = configs / "walk.yaml"
    config.write_text(textwrap.dedent("""
        name: walk
        series:
          - {name: s0, source: csv, params: {path: ../data/s0.csv}}
          - {name: s1, source: csv, params: {path: ../data/s1.csv}}
        preprocessing: {horizon: 3}
        models: {enabled: [naive, seasonal_naive]}
        backtest: {n_windows: 2, modes: [latest]}
    """), encoding="utf-8")
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    assert cli_main(["-q", "run", "--config", str(config)]) == 0
    cli_run = conn.execute("SELECT max(run_id) FROM pipeline_runs").fetchone()[0]
    versions = conn.execute("SELECT count(*) FROM model_versions").fetchone()[0]

    result, output = _dag_test(
        f"""
        import json, pathlib
        from airflow.dag_processing.dagbag import DagBag
        from airflow.models.asset import AssetDagRunQueue, AssetEvent
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session

        bag = DagBag(dag_folder="dags")
        with create_session() as session:  # as the walkthrough does with their toggles
            session.query(DagModel).filter(DagModel.dag_id.in_(["forecasting_walk_train", "forecasting_walk_predict"])
                                           ).update({{"is_paused": False}}, synchronize_session=False)

        def run(dag_id):
            dag_run = bag.get_dag(dag_id).test()
            with create_session() as session:
                events = session.query(AssetEvent).filter(AssetEvent.source_run_id == dag_run.run_id).count()
                queued = sorted(q.target_dag_id for q in session.query(AssetDagRunQueue))
            return {{"state": str(dag_run.state), "events": events, "queued": queued,
                    "tasks": {{ti.task_id: str(ti.state) for ti in dag_run.get_task_instances() if ti.map_index <= 0}}}}

        out = {{"unchanged": run("forecasting_walk_ingest")}}
        config = pathlib.Path({str(config)!r})
        config.write_text(config.read_text().replace("n_windows: 2", "n_windows: 3"))
        out["config_changed"] = run("forecasting_walk_ingest")
        out["train"] = run("forecasting_walk_train")
        out["predict"] = run("forecasting_walk_predict")
        out["again"] = run("forecasting_walk_ingest")
        print("RESULT " + json.dumps(out))
    """,
        _airflow_env(tmp_path, configs, database.url),
    )
    runs = json.loads(result)
    # right after the CLI run: nothing changed and its models are current, so no Asset and no training
    assert runs["unchanged"]["state"] == "success" and runs["unchanged"]["tasks"]["publish"] == "skipped"
    assert runs["unchanged"]["events"] == 0 and runs["unchanged"]["queued"] == []
    assert ("no series changed in this run's ingest; every partition has current models (registered for its current "
            f"data, settings and code by pipeline run(s) {cli_run}): the data Asset is not emitted") in output
    # the registered models no longer match the config: the unchanged ingest emits the Asset, the train DAG queues
    assert runs["config_changed"]["tasks"]["publish"] == "success"
    assert runs["config_changed"]["events"] == 1 and runs["config_changed"]["queued"] == ["forecasting_walk_train"]
    assert ("no series changed in this run's ingest; 1 of 1 partition(s) lack current models: the data Asset is "
            f"emitted, training runs\n  W-SUN:1/1: settings differ from its last training's (run {cli_run}): "
            "backtest.n_windows: 2 -> 3") in output
    # train (it reuses the registered versions: only the backtest changed) and predict, which its Asset starts
    assert runs["train"]["state"] == "success" and runs["train"]["tasks"]["publish"] == "success"
    assert runs["train"]["events"] == 1 and "forecasting_walk_predict" in runs["train"]["queued"]
    assert runs["predict"]["state"] == "success"
    assert conn.execute("SELECT count(*) FROM model_versions").fetchone()[0] == versions
    statuses = conn.execute("SELECT command, status FROM pipeline_runs ORDER BY run_id").fetchall()
    assert statuses == [("run", "succeeded"), ("train", "succeeded"), ("predict", "succeeded")]
    # and now the models are current again: the next unchanged ingest trains nothing
    assert runs["again"]["tasks"]["publish"] == "skipped" and runs["again"]["events"] == 0


def test_plugin_links_the_grafana_dashboards_and_registers_its_listener(tmp_path):
    result = _python(
        """
        import json, sys
        from airflow import plugins_manager
        plugins = {p.name: p for p in plugins_manager.get_plugins()[0]} if hasattr(plugins_manager, "get_plugins") \
            else {p.name: p for p in plugins_manager._get_plugins()[0]}
        plugin = plugins["forecasting"]
        print(json.dumps({"views": plugin.external_views,
                          "apps": [{k: v for k, v in a.items() if k != "app"} for a in plugin.fastapi_apps],
                          "web_imported": "forecasting.web" in sys.modules,
                          "listeners": [type(x).__name__ for x in plugin.listeners]}))
    """,
        _airflow_env(tmp_path, ROOT / "examples"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["listeners"] == ["DagRunRecorder"]
    forecasts, *grafana = report["views"]
    assert forecasts == {"name": "Forecasts", "href": "/forecasts/", "destination": "nav", "url_route": "forecasts",
                         "nav_top_level": True}
    assert report["apps"] == [{"url_prefix": "/forecasts", "name": "Forecasts"}]
    assert report["web_imported"] is False  # built on the API server's first request, not in every component
    assert [v["href"] for v in grafana] == [
        "http://grafana.test:3000/d/forecasting-forecast",
        "http://grafana.test:3000/d/forecasting-backtest",
        "http://grafana.test:3000/d/forecasting-freshness",
        "http://grafana.test:3000/d/forecasting-health",
    ]
    assert {v["destination"] for v in grafana} == {"nav"}
    uids = {json.loads(p.read_text())["uid"] for p in (ROOT / "grafana" / "dashboards").glob("*.json")}
    assert {v["href"].rsplit("/", 1)[1] for v in grafana} == uids


def test_plugin_mounts_the_forecasts_app_behind_airflows_login(tmp_path, database):
    """Airflow's own API app, with the plugin: /forecasts answers only with a valid Airflow token, and then from
    the forecast store."""
    from forecasting.db import apply_migrations

    with database.connect() as conn:
        apply_migrations(conn)
    env = _airflow_env(tmp_path, ROOT / "examples", database.url)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
    _airflow(["db", "migrate"], env)
    result = _python(
        """
        import json
        from fastapi.testclient import TestClient
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        client = TestClient(create_app())
        anonymous = client.get("/forecasts/api/v1/pipelines")
        page = client.get("/forecasts/")
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        bearer = client.get("/forecasts/api/v1/pipelines", headers={"Authorization": f"Bearer {token}"})
        client.cookies.set("_token", token)
        cookie_page = client.get("/forecasts/")
        print("RESULT " + json.dumps({"anonymous": anonymous.status_code, "page": page.status_code,
                                      "bearer": [bearer.status_code, bearer.json()],
                                      "cookie_page": [cookie_page.status_code, "<h1>Pipelines</h1>" in cookie_page.text,
                                                      'href="/forecasts/runs"' in cookie_page.text]}))
    """,
        env,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(lines[-1][len("RESULT "):])
    assert report["anonymous"] == 401 and report["page"] == 401
    assert report["bearer"] == [200, {"pipelines": []}]
    assert report["cookie_page"] == [200, True, True]  # links follow the mount point


@pytest.mark.parametrize(
    ("status", "ingest_settings"),
    [
        (503, "{retries: 2, retry_backoff_seconds: 1}"),
        # a 429 waits rate_limit_backoff_seconds (2 s), not the 10-minute default delay: the retry policy applies
        (429, "{retries: 2, retry_backoff_seconds: 600, rate_limit_backoff_seconds: 2}"),
    ],
)
def test_a_transient_source_error_is_retried_by_airflow(tmp_path, database, conn, status, ingest_settings):
    from test_ingest import _FlakyCsv

    _FlakyCsv.requests, _FlakyCsv.failures, _FlakyCsv.status = 0, 1, status  # the first download fails
    configs = tmp_path / "configs"
    configs.mkdir()
    with _serving(_FlakyCsv) as port:
        (configs / "flaky.yaml").write_text(
            textwrap.dedent(f"""
            name: flaky
            series:
              - {{name: s, source: csv, params: {{path: "http://127.0.0.1:{port}/s.csv"}}}}
            ingest: {ingest_settings}
        """),
            encoding="utf-8",
        )
        result, _ = _dag_test(
            """
            from airflow.dag_processing.dagbag import DagBag
            run = DagBag(dag_folder="dags").get_dag("forecasting_flaky_ingest").test()
            tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
            print("RESULT", run.state, tries["ingest_csv"])
        """,
            _airflow_env(tmp_path, configs, database.url),
        )
    assert result.split() == ["success", "2"]  # failed on the first answer, succeeded on Airflow's retry
    assert _FlakyCsv.requests == 2
    runs = conn.execute("SELECT r.outcome, r.retryable FROM ingest_results r ORDER BY r.ingest_run_id").fetchall()
    assert runs == [("failed", True), ("initial", None)]


def test_a_crashed_shard_task_still_lets_the_others_publish_and_fails_the_run_by_name(tmp_path, database, conn):
    """A user edits the config into an invalid state while a run is in progress: the shard that runs first
    (already started) stores its series, the other shard task cannot load the config and fails after its
    retries. Which of the two runs first is Airflow's choice, so the test accepts either order."""
    configs = tmp_path / "configs"
    configs.mkdir()
    config = configs / "crash.yaml"
    csv = "ts,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 29))

    class BreaksTheConfig(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            with config.open("a", encoding="utf-8") as out:  # still YAML, no longer a valid config
                out.write("preprocessing: {horizon: -1}\n")
            body = csv.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with _serving(BreaksTheConfig) as port:
        config.write_text(textwrap.dedent(f"""
            name: crash
            series:
              - {{name: s0, source: csv, params: {{path: "http://127.0.0.1:{port}/s0.csv"}}}}
              - {{name: s1, source: csv, params: {{path: "http://127.0.0.1:{port}/s1.csv"}}}}
            ingest: {{shard_size: 1, retry_backoff_seconds: 0}}
        """), encoding="utf-8")
        result, output = _dag_test(
            """
            from airflow.dag_processing.dagbag import DagBag
            from airflow.models.asset import AssetEvent, AssetModel
            from airflow.utils.session import create_session
            run = DagBag(dag_folder="dags").get_dag("forecasting_crash_ingest").test()
            states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}
            with create_session() as session:
                events = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id) \
                    .filter(AssetModel.name == "forecasting_crash_data").count()
            print("RESULT", run.state, states["ingest_csv[0]"], states["ingest_csv[1]"], states["publish[-1]"],
                  states["check[-1]"], events)
        """,
            _airflow_env(tmp_path, configs, database.url),
        )
    run_state, shard0, shard1, publish, check, events = result.split()
    assert sorted([shard0, shard1]) == ["failed", "success"]
    assert (run_state, publish, check, events) == ("failed", "success", "failed", "1")  # the Asset was emitted
    stored, crashed = ("s0", "s1") if shard0 == "success" else ("s1", "s0")
    assert f"series failed: {crashed}: its shard task failed" in output
    assert conn.execute("SELECT name FROM series").fetchall() == [(stored,)]


def test_listener_records_a_run_inside_the_schedulers_no_commit_guard(tmp_path, database, conn):
    """The scheduler calls DAG-run listeners inside `prohibit_commit`; a listener that commits Airflow's session
    raises "UNEXPECTED COMMIT" and takes the scheduler down (seen under `airflow standalone`)."""
    env = _airflow_env(tmp_path, ROOT / "examples", database.url)
    _airflow(["db", "migrate"], env)
    result = _python(
        """
        import importlib.util, json
        import pendulum
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.sqlalchemy import prohibit_commit
        from airflow.utils.state import DagRunState

        spec = importlib.util.spec_from_file_location("forecasting_plugin", "plugins/forecasting_plugin.py")
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)
        recorder = plugin.DagRunRecorder()
        with create_session() as session:
            run = DagRun(dag_id="forecasting_guard_ingest", run_id="manual__guard", run_type="manual",
                         state=DagRunState.RUNNING, start_date=pendulum.now("UTC"))
            session.add(run)
            session.flush()
            with prohibit_commit(session) as guard:
                recorder.on_dag_run_running(dag_run=run, msg="running")
                run.state = DagRunState.SUCCESS
                recorder.on_dag_run_success(dag_run=run, msg="success")
                guard.commit()  # raises if the listener broke the scheduler's transaction
            print("RESULT " + json.dumps({"state": str(run.state)}))
        recorder.flush()
    """,
        env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "UNEXPECTED COMMIT" not in result.stdout + result.stderr
    assert "RESULT " in result.stdout
    recorded = conn.execute(
        "SELECT run_type, state, message FROM airflow_dag_runs WHERE dag_id = 'forecasting_guard_ingest'"
    ).fetchall()
    assert recorded == [("manual", "success", "success")]


def test_an_invalid_config_fails_the_ingest_run_at_once_and_says_why(tmp_path, database):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "bad.yaml").write_text(textwrap.dedent("""
        name: bad
        series: [{name: s, source: csv, params: {path: s.csv}}]
        models: {enabled: [prophet]}
    """), encoding="utf-8")
    result, output = _dag_test(
        """
        from airflow.dag_processing.dagbag import DagBag
        run = DagBag(dag_folder="dags").get_dag("forecasting_bad_ingest").test()
        tis = {ti.task_id: ti for ti in run.get_task_instances()}
        print("RESULT", run.state, tis["plan_csv"].state, tis["plan_csv"].try_number, tis["check"].state)
    """,
        _airflow_env(tmp_path, configs, database.url),
    )
    # a permanent error: one try, not three; and the run is red, not green
    assert result.split() == ["failed", "failed", "1", "failed"]
    assert "models.enabled[0]: unknown model 'prophet'; known models: naive" in output
    assert "the ingest was not planned for source(s) csv" in output


def test_a_broken_config_shows_its_own_error_dag_and_never_hides_the_others(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "demo.yaml").write_text((ROOT / "examples" / "demo.yaml").read_text(encoding="utf-8"),
                                       encoding="utf-8")
    (configs / "broken.yaml").write_text("name: broken\nseries: [\n", encoding="utf-8")
    (configs / "zero.yaml").write_text("name: zero\nseries: []\ningest: {shard_size: 0}\n", encoding="utf-8")
    (configs / "cron.yaml").write_text("name: cron\nschedule: not a cron\nseries: []\n", encoding="utf-8")
    result = _python(
        """
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder="dags")
        print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                          "dags": {d.dag_id: d.description or "" for d in bag.dags.values()}}))
    """,
        _airflow_env(tmp_path, configs),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert sorted(report["dags"]) == [
        "forecasting_broken_config_error", "forecasting_cron_config_error", "forecasting_demo_ingest",
        "forecasting_demo_predict", "forecasting_demo_train", "forecasting_zero_config_error"]
    assert report["dags"]["forecasting_broken_config_error"].startswith("broken.yaml: while parsing")
    assert "shard_size" in report["dags"]["forecasting_zero_config_error"]
    assert "not a cron" in report["dags"]["forecasting_cron_config_error"]
