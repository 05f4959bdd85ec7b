"""Scale-out under CeleryExecutor: scripts/scale_out_check.py starts Redis, the embedded PostgreSQL (Airflow's
metadata, Celery's results, a fresh forecast store) and Airflow with two Celery workers, runs ingest -> train ->
predict on 2,000 synthetic series in 4 partitions, and reports which worker ran each mapped modeling task.
Needs Debian's redis-server: scripts/install-test-tools.sh installs it where it can."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import as_in_a_terminal

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "scale_out_check.py"
WORKERS = {"worker-a", "worker-b"}


@pytest.fixture(scope="module")
def redis_server() -> str:
    if shutil.which("redis-server") is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-test-tools.sh")], timeout=600, check=False)
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("Debian's redis-server is not installed and scripts/install-test-tools.sh could not install it")
    return path


def _leftovers(work: Path) -> list[str]:
    """Processes still running from the check's folder (cwd or command line), e.g. redis, postgres, airflow."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cwd, cmdline = process.info["cwd"] or "", " ".join(process.info["cmdline"] or [])
        if str(work) in cwd or str(work) in cmdline:
            found.append(f"{process.info['pid']}: {cmdline}")
    return found


def _host_table(stdout: str) -> list[dict]:
    """The printed table's rows: dag, task, map index, partition label, hostname, state."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith("forecasting_scale_out_"):
            dag, task, index, label, host, state = re.split(r"\s{2,}", line.strip())
            rows.append({"dag_id": dag, "task_id": task, "map_index": int(index), "label": label,
                         "hostname": host, "state": state})
    return rows


@pytest.mark.slow
def test_mapped_modeling_tasks_spread_over_two_celery_workers(tmp_path, redis_server):
    report_path = tmp_path / "report.json"
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(SCRIPT), "--report", str(report_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-8000:] + result.stdout[-2000:]
    report = json.loads(report_path.read_text())

    # the two final lines
    lines = result.stdout.strip().splitlines()
    workers_line, rows_line = lines[-2:]
    assert re.fullmatch(r"workers used: \d+", workers_line) and re.fullmatch(r"forecast rows: \d+", rows_line)
    workers, forecast_rows = int(workers_line.rsplit(" ", 1)[1]), int(rows_line.rsplit(" ", 1)[1])
    assert workers >= 2
    # every model forecasts every series over the horizon: 2,000 x 7 x 3
    assert report["series"] == 2000 and report["horizon"] == 7 and len(report["models"]) == 3
    assert forecast_rows == report["series"] * report["horizon"] * len(report["models"]) == 42_000

    # the host table: every partition (4 of 500 series) of every mapped modeling task, each on a named worker
    table = _host_table(result.stdout)
    assert table == report["instances"]
    assert {(r["task_id"], r["map_index"]) for r in table} == {
        (task, index) for task in ("features", "backtest", "train", "predict") for index in range(4)}
    assert all(r["state"] == "success" and r["label"].endswith("of 4 (500 series)") for r in table)
    assert {r["hostname"] for r in table} == WORKERS and workers == len(WORKERS)
    for worker in WORKERS:  # each worker ran train or predict work, not just the ingest shards
        assert any(r["hostname"] == worker and r["task_id"] in ("train", "predict") for r in table), worker

    runs = report["runs"]
    assert {dag: run["state"] for dag, run in runs.items()} == {
        "forecasting_scale_out_ingest": "success", "forecasting_scale_out_train": "success",
        "forecasting_scale_out_predict": "success"}
    assert runs["forecasting_scale_out_ingest"]["run_type"] == "manual"  # through the REST API
    assert runs["forecasting_scale_out_train"]["run_type"] == "asset_triggered"
    assert runs["forecasting_scale_out_predict"]["run_type"] == "asset_triggered"

    # torn down: no process of the check is left and its folder is gone
    work = Path(report["work"])
    assert not work.exists() and _leftovers(work) == []
    print(f"scale-out check: {elapsed:.0f} s end to end")


@pytest.mark.slow
def test_ctrl_c_tears_everything_down(tmp_path, redis_server):
    report_path = tmp_path / "report.json"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--report", str(report_path)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_in_a_terminal)
    try:
        stderr = ""
        deadline = time.monotonic() + 300
        for line in process.stderr:  # interrupt once both workers and the scheduler are running
            stderr += line
            if "started worker-worker-b" in line or time.monotonic() > deadline:
                break
        work = Path(re.search(r"working in (\S+)", stderr).group(1))
        time.sleep(5)
        assert _leftovers(work), "the check started nothing"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr + err
    assert "interrupted; tearing down" in err
    assert json.loads(report_path.read_text())["error"] == "interrupted"
    assert not work.exists()
    assert _leftovers(work) == []
