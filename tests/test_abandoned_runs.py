"""A run whose process dies is marked abandoned, with the reason, by the next run on the same host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from forecasting.config import parse_config
from forecasting.run import execute
from forecasting.store.owners import reap_abandoned_runs
from forecasting.store.runs import ingest_run_start


def _config(tmp_path) -> dict:
    series = []
    for i in range(6):
        ts = pd.date_range("2023-01-01", periods=300, freq="D").strftime("%Y-%m-%d")
        values = (100 + np.random.default_rng(i).normal(0, 1, 300).cumsum()).round(3)
        path = tmp_path / f"s{i}.csv"
        pd.DataFrame({"ts": ts, "value": values}).to_csv(path, index=False)
        series.append({"name": f"s{i}", "source": "csv", "params": {"path": str(path)}})
    return {"name": "killed", "series": series, "preprocessing": {"horizon": 7, "target_lags": [1, 7]},
            "models": {"enabled": ["naive", "arima"]}, "backtest": {"n_windows": 3, "modes": ["latest"]}}


def test_a_killed_cli_run_is_marked_abandoned_by_the_next_run(database, tmp_path, conn):
    path = tmp_path / "killed.yaml"
    path.write_text(json.dumps(_config(tmp_path)), encoding="utf-8")
    env = {**os.environ, "FORECASTING_DATABASE_URL": database.url}
    child = subprocess.Popen([sys.executable, "-m", "forecasting", "-q", "run", "--config", str(path)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # the backtest step has started: ARIMA keeps it busy a while (an earlier step, such as features, can finish
        # between the poll and the kill, leaving no step to abandon)
        while time.monotonic() < deadline:
            row = conn.execute("SELECT r.run_id, r.owner_pid FROM pipeline_runs r JOIN run_steps s USING (run_id) "
                               "WHERE r.status = 'running' AND s.status = 'running' AND s.step = 'backtest'"
                               ).fetchone()
            if row:
                break
            time.sleep(0.1)
        assert row is not None and row[1] == child.pid
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert conn.execute("SELECT status FROM pipeline_runs WHERE run_id = %s", (row[0],)).fetchone()[0] == "running"

    config = parse_config(_config(tmp_path) | {"models": {"enabled": ["naive"]}})
    report = execute(database, config, command="train")
    status, error, finished = conn.execute("SELECT status, error, finished_at FROM pipeline_runs WHERE run_id = %s",
                                           (row[0],)).fetchone()
    assert status == "abandoned" and finished is not None
    assert f"its process {child.pid} on" in error and "ended without finishing the run" in error
    # the step it was in died with it: abandoned with the same reason, none left 'running'
    steps = conn.execute("SELECT status, error FROM run_steps WHERE run_id = %s", (row[0],)).fetchall()
    assert "abandoned" in {s for s, _ in steps} and "running" not in {s for s, _ in steps}
    assert all(e == error for s, e in steps if s == "abandoned")
    assert conn.execute("SELECT count(*) FROM v_run_forecasts WHERE run_id = %s", (row[0],)).fetchone()[0] == 0
    assert conn.execute("SELECT status FROM pipeline_runs WHERE run_id = %s", (report.run_id,)).fetchone()[0] == \
        "succeeded"


def test_an_ingest_run_of_a_dead_process_is_abandoned_and_a_live_one_is_not(conn):
    mine = ingest_run_start(conn, config_name="p", config_path=None)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = ingest_run_start(conn, config_name="p", config_path=None)
    conn.execute("UPDATE ingest_runs SET owner_pid = %s WHERE ingest_run_id = %s", (int(gone.stdout), dead))
    assert reap_abandoned_runs(conn) == [("ingest_runs", dead)]
    states = dict(conn.execute("SELECT ingest_run_id, status FROM ingest_runs").fetchall())
    assert states == {mine: "running", dead: "abandoned"}
