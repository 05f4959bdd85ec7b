"""The per-series models' worker processes: their number follows the task slots, they live as long as the step,
and a step's process exits as soon as its work is done (no idle timeout between two partition steps)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.models import parallel
from forecasting.models.statistical import Naive2Forecaster
from forecasting.orchestration import model_step
from forecasting.steps.plan import plan_run
from forecasting.steps.select import select_champions
from forecasting.store.writers import SeriesMeta, series_upsert

ROOT = Path(__file__).resolve().parents[1]
N_SERIES = 20  # above map_chunks' threshold for using processes


def _panel(n: int = N_SERIES, days: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"series": f"s{i}", "ts": pd.date_range("2024-01-01", periods=days),
                            "y": 100 + rng.normal(0, 1, days).cumsum()}) for i in range(n)]
    return pd.concat(frames, ignore_index=True)


def test_n_jobs_defaults_to_the_cores_divided_by_the_task_slots(monkeypatch):
    monkeypatch.setattr(parallel, "_usable_cores", lambda: 8)
    monkeypatch.delenv(parallel.TASK_SLOTS_ENV, raising=False)
    assert parallel.resolve_n_jobs(None) == 8
    monkeypatch.setenv(parallel.TASK_SLOTS_ENV, "2")
    assert parallel.resolve_n_jobs(None) == 4
    monkeypatch.setenv(parallel.TASK_SLOTS_ENV, "16")
    assert parallel.resolve_n_jobs(None) == 1  # never fewer than one
    assert parallel.resolve_n_jobs(3) == 3  # modeling.n_jobs, when set, wins
    monkeypatch.setenv(parallel.TASK_SLOTS_ENV, "zero")
    with pytest.raises(ValueError, match="FORECASTING_TASK_SLOTS must be a whole number >= 1, got 'zero'"):
        parallel.resolve_n_jobs(None)


def test_workers_are_reused_inside_a_block_and_stopped_when_it_ends():
    panel = _panel()
    with parallel.worker_processes():
        first = Naive2Forecaster(n_jobs=2).fit(panel, freq="D")
        executor = parallel._pool[1]
        Naive2Forecaster(n_jobs=2).fit(panel, freq="D")
        assert parallel._pool[1] is executor  # the second fit reused the running workers
    assert parallel._pool is None
    serial = Naive2Forecaster(n_jobs=1).fit(panel, freq="D")
    assert parallel._pool is None  # one process: no pool at all
    pd.testing.assert_frame_equal(first.predict(3), serial.predict(3))


def _airflow_slots(tmp_path, **env) -> str:
    code = """
        import os
        os.environ["AIRFLOW_CTX_DAG_ID"] = "d"  # as Airflow's task runner sets it
        from forecasting.orchestration import _share_cores_with_other_tasks, airflow_task_slots
        from forecasting.models.parallel import resolve_n_jobs
        _share_cores_with_other_tasks()
        print(airflow_task_slots(), os.environ.get("FORECASTING_TASK_SLOTS"), resolve_n_jobs(None))
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "FORECASTING_TASK"))}
    full |= {"AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)} | env
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split("\n")[-2]


def test_an_airflow_task_shares_the_cores_with_the_other_slots_of_its_worker(tmp_path):
    cores = parallel._usable_cores()
    celery = _airflow_slots(tmp_path, AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
                            AIRFLOW__CELERY__WORKER_CONCURRENCY="2")
    assert celery == f"2 2 {max(1, cores // 2)}"
    local = _airflow_slots(tmp_path, AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__CORE__PARALLELISM="4")
    assert local == f"4 4 {max(1, cores // 4)}"
    # the operator's own setting wins
    mine = _airflow_slots(tmp_path, AIRFLOW__CORE__EXECUTOR="LocalExecutor", FORECASTING_TASK_SLOTS="1")
    assert mine == f"32 1 {cores}"


def _timed_step(step: str, partition: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    summary = model_step(step, partition)
    return time.perf_counter() - started, summary


def test_two_consecutive_partition_steps_in_fresh_processes_do_not_wait_on_each_other(database, conn, monkeypatch):
    """As an Airflow worker (or benchmarks/scale.py) runs them: each step in a fresh process that must exit before
    the next one starts. The backtest fits naive2 in worker processes; before, they kept the step's process alive
    until their idle timeout (300 s) and the next step waited for it."""
    days = 60
    rng = np.random.default_rng(1)
    for i in range(N_SERIES):
        series_upsert(conn, meta=SeriesMeta(source="csv", name=f"s{i:02d}", frequency="D"),
                      frame=pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=days).astype("datetime64[ns]"),
                                          "value": (100 + rng.normal(0, 1, days).cumsum()).round(3)}))
    conn.commit()
    config = parse_config({
        "name": "exits", "series": [{"name": f"s{i:02d}", "source": "csv", "frequency": "D",
                                     "params": {"path": f"/nonexistent/s{i:02d}.csv"}} for i in range(N_SERIES)],
        "preprocessing": {"horizon": 7, "target_lags": [1, 7]},
        "models": {"enabled": ["naive", "naive2"]}, "modeling": {"n_jobs": 2},
        "backtest": {"n_windows": 2, "modes": ["latest"]}, "prediction": {"explain_top_k": 0}})
    run_id, partitions = plan_run(conn, config, command="train")
    conn.commit()
    partition = {"run_id": run_id, "key": partitions[0].key, "label": partitions[0].key}
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)  # the spawned processes' store
    gaps = []
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1)
    try:
        for step in ("features", "backtest", "train"):
            if step == "train":
                select_champions(conn, run_id=run_id)
                conn.commit()
            submitted = time.perf_counter()
            seconds, summary = pool.submit(_timed_step, step, partition).result(timeout=120)
            gaps.append(time.perf_counter() - submitted - seconds)
            assert summary["key"] == partition["key"]
            if step == "backtest":  # naive2 was fitted (in worker processes: 20 series, n_jobs 2)
                assert "naive2" in summary["modes"]["latest"]["fit_seconds"]
    finally:  # a process that does not exit must fail the test, not hang it
        for process in list((pool._processes or {}).values()):
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
    # each gap is the previous step's process exiting plus a new one starting (spawn, imports): seconds, not
    # the 300 s of an idle timeout
    assert max(gaps) < 60, gaps
