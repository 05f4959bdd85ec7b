"""Browser check of the Airflow UI: scripts/browser_check.py starts Airflow standalone on this repository, logs
in headless in Debian's chromium, triggers the ingest DAG from its form, waits for ingest -> train -> predict
(chained by Assets under the real scheduler) and saves screenshots. `.ci/run` installs chromium when it can."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (.ci/run installs it with apt-get where it can)",
)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_airflow_ui_runs_the_demo_pipeline_and_is_screenshotted(tmp_path, database, conn):
    out = tmp_path / "screenshots"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "browser_check.py"), "--out", str(out),
         "--database-url", database.url, "--pipeline", "demo"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    report = json.loads((out / "report.json").read_text())
    standalone_log = (out / "airflow-standalone.log").read_text(errors="replace")
    assert result.returncode == 0 and report["ok"], (report["error"], result.stderr[-4000:], standalone_log[-4000:])
    assert "UNEXPECTED COMMIT" not in standalone_log  # the plugin's listener runs inside the scheduler

    assert report["dag_ids"] == ["forecasting_demo_ingest", "forecasting_demo_predict", "forecasting_demo_train"]
    runs = report["runs"]
    assert {dag: run["state"] for dag, run in runs.items()} == {
        "forecasting_demo_ingest": "success", "forecasting_demo_train": "success",
        "forecasting_demo_predict": "success"}
    assert runs["forecasting_demo_ingest"]["run_type"] == "manual"  # triggered from the UI's form
    assert runs["forecasting_demo_train"]["run_type"] == "asset_triggered"
    assert runs["forecasting_demo_predict"]["run_type"] == "asset_triggered"

    assert list(report["screenshots"]) == ["dag-list", "ingest-run", "predict-run", "dag-list-after-runs",
                                           "grafana-links", "forecasts-pipelines", "forecasts-series",
                                           "forecasts-runs"]
    for path in map(Path, report["screenshots"].values()):
        width, height = _png_size(path)
        assert width == 1440 and height >= 900
        assert path.stat().st_size > 20_000  # a rendered page, not a blank one
    assert [link.rsplit("/", 1)[1] for link in report["grafana_links"]] == [
        "forecasting-forecast", "forecasting-backtest", "forecasting-freshness", "forecasting-health"]

    # the Forecasts view opened inside the Airflow UI, and its chart drew what the plugin's JSON API returns
    forecasts = report["forecasts"]
    assert "/plugin/forecasts" in forecasts["url"]
    assert forecasts["series"] == "co2"  # the first target of the demo by name
    assert forecasts["drawn"]["actual_points"] == forecasts["api"]["actual_points"] > 1000
    assert forecasts["drawn"]["forecast_points"] == forecasts["api"]["forecast_points"] == 8  # the demo's horizon
    assert sorted(forecasts["drawn"]["band_levels"]) == forecasts["api"]["levels"] == [80, 95]

    # the tasks wrote to the forecast store, and the listener recorded the runs from the real scheduler
    predict_run = runs["forecasting_demo_predict"]["run_id"]
    forecasts = conn.execute(
        "SELECT count(*), count(DISTINCT f.series_id) FROM forecasts f JOIN pipeline_runs r USING (run_id) "
        "WHERE r.triggered_by = %s AND r.status = 'succeeded'",
        (f"airflow:forecasting_demo_predict:{predict_run}",),
    ).fetchone()
    assert forecasts[0] > 0 and forecasts[1] == 3  # the three target series of the demo
    recorded = dict(conn.execute(
        "SELECT dag_id || ':' || run_id, state FROM airflow_dag_runs WHERE state = 'success'").fetchall())
    for dag_id, run in runs.items():
        assert recorded.get(f"{dag_id}:{run['run_id']}") == "success"
