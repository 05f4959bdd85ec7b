"""Scale benchmark of the partitioned modeling steps (not a test).

    python benchmarks/scale.py --n 1000                  # 1,000 synthetic daily series x 200 points
    python benchmarks/scale.py --n 10000 --workers 2     # two partition tasks at a time, as two Airflow workers
    python benchmarks/scale.py --n 100000 --models naive lightgbm_global

Synthetic daily series (level, trend, weekly season, noise) are stored through the store's version-aware
upsert (download and validation are the ingest benchmark's business), then one modeling run with the
default models and settings: plan, then features, backtest, train and predict per partition, each
partition step in a fresh process as an Airflow task would be, and select over the run. It prints the
seconds of each step, ms per series, and the peak resident memory of the largest partition task; the last
line has the form

    scale n=10000 partitions=10 model_s=... ms_per_series=... peak_partition_rss_mb=...
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import psycopg

from forecasting.config import parse_config
from forecasting.db import apply_migrations
from forecasting.db.embedded import embedded_server_url, stop_embedded_server
from forecasting.models.parallel import TASK_SLOTS_ENV, resolve_n_jobs
from forecasting.steps.plan import finish_run, plan_run
from forecasting.steps.table import command_steps
from forecasting.store.writers import SeriesMeta, series_upsert


def synthetic(index: int, points: int) -> pd.DataFrame:
    rng = np.random.default_rng(index)
    t = np.arange(points)
    level = rng.uniform(20, 500)
    values = (level * (1 + rng.uniform(-0.001, 0.002) * t + rng.uniform(0, 0.2) * np.sin(2 * np.pi * t / 7))
              + rng.normal(0, level * 0.03, points).cumsum()).round(4)
    ts = pd.date_range("2023-01-01", periods=points, freq="D")
    return pd.DataFrame({"ts": ts.astype("datetime64[ns]"), "value": values})


def config_of(n: int, partition_size: int | None, models: list[str] | None) -> dict:
    raw: dict = {"name": "scale", "series": [{"name": f"s{i:06d}", "source": "csv", "frequency": "D",
                                              "params": {"path": f"/nonexistent/s{i:06d}.csv"}} for i in range(n)],
                 "backtest": {"modes": ["latest"]}}
    if partition_size:
        raw["modeling"] = {"partition_size": partition_size}
    if models:
        raw["models"] = {"enabled": models}
    return raw


def store_series(url: str, n: int, points: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(n):
            series_upsert(conn, meta=SeriesMeta(source="csv", name=f"s{i:06d}", frequency="D"),
                          frame=synthetic(i, points))
            if (i + 1) % 1000 == 0:
                print(f"  stored {i + 1} series", file=sys.stderr)
    return time.perf_counter() - started


def partition_task(url: str, step: str, run_id: int, key: str) -> tuple[str, str, float, float, dict]:
    """One step of one partition in this (fresh) process: (step, key, seconds, peak RSS MB, summary)."""
    os.environ["FORECASTING_DATABASE_URL"] = url
    from forecasting.orchestration import model_step

    started = time.perf_counter()
    summary = model_step(step, {"run_id": run_id, "key": key, "label": key})
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return step, key, seconds, peak_mb, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="number of series")
    parser.add_argument("--points", type=int, default=200, help="points per series")
    parser.add_argument("--partition-size", type=int, help="modeling.partition_size (default: the config's)")
    parser.add_argument("--models", nargs="+",
                        help="models (default: the pipeline's default set, models.enabled of a config without it)")
    parser.add_argument("--workers", type=int, default=1, help="partition tasks run at once")
    parser.add_argument("--partitions", type=int,
                        help="run the steps of only this many evenly spaced partitions (memory at 100,000 series "
                             "without hours of modeling); per-series figures are then of those partitions")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a fresh embedded one)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the embedded server below

    data_dir = None
    url = args.database_url
    if url is None:
        data_dir = Path(tempfile.mkdtemp(prefix="forecasting-scale-"))
        server = embedded_server_url(data_dir)
        name = "scale_" + uuid.uuid4().hex[:8]
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            apply_migrations(conn)
        print(f"storing {args.n} series x {args.points} points ...", file=sys.stderr)
        store_s = store_series(url, args.n, args.points)
        config = parse_config(config_of(args.n, args.partition_size, args.models))
        timings: dict[str, float] = {}
        peaks: dict[str, float] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            run_id, partitions = plan_run(conn, config, command="train")
            timings["plan"] = time.perf_counter() - started
        print(f"run {run_id}: {len(partitions)} partition(s) of up to {config.modeling.partition_size} series; "
              f"models {', '.join(config.models.enabled)}" + ("" if args.models else " (the pipeline's default set)"))
        # each step process is one of --workers task slots on this machine: modeling.n_jobs's default gives it its
        # share of the cores (forecasting.models.parallel), as an Airflow worker's tasks get theirs
        os.environ.setdefault(TASK_SLOTS_ENV, str(args.workers))
        print(f"{args.workers} partition task(s) at a time, each fitting per-series models in "
              f"{resolve_n_jobs(config.modeling.n_jobs)} process(es) (modeling.n_jobs)")
        if args.partitions and args.partitions < len(partitions):
            picked = np.linspace(0, len(partitions) - 1, args.partitions).round().astype(int)
            partitions = [partitions[i] for i in sorted(set(picked))]
            print(f"running the steps of {len(partitions)} of them: {', '.join(p.key for p in partitions)}")
        modelled = sum(len(p.series_ids) for p in partitions)
        context = get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=context, max_tasks_per_child=1) as pool:
            for spec in command_steps("run"):
                step = spec.name
                if spec.scope == "run":
                    with psycopg.connect(url, autocommit=True) as conn:
                        started = time.perf_counter()
                        spec.run(conn, run_id=run_id)
                        timings[step] = time.perf_counter() - started
                    continue
                started = time.perf_counter()
                jobs = [pool.submit(partition_task, url, step, run_id, p.key) for p in partitions]
                results = [job.result() for job in jobs]
                timings[step] = time.perf_counter() - started
                peaks[step] = max(r[3] for r in results)
                slowest = max(results, key=lambda r: r[2])
                print(f"  {step:<9} {timings[step]:8.1f} s  slowest partition {slowest[1]} {slowest[2]:.1f} s, "
                      f"peak RSS {peaks[step]:.0f} MB", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            status, _ = finish_run(conn, run_id=run_id)
            fit_seconds = conn.execute(
                "SELECT summary->'modes'->'latest'->'fit_seconds' FROM run_steps WHERE run_id = %s "
                "AND step = 'backtest'", (run_id,)).fetchall()
            rows = conn.execute("SELECT count(*) FROM forecasts WHERE run_id = %s", (run_id,)).fetchone()[0]
        per_model: dict[str, float] = {}
        for (seconds,) in fit_seconds:
            for model, value in (seconds or {}).items():
                per_model[model] = per_model.get(model, 0.0) + value
        model_s = sum(timings.values())
        print(f"\nstore {store_s:.1f} s ({1000 * store_s / args.n:.1f} ms/series), run status {status}, "
              f"{rows} forecast rows")
        print(f"step       seconds  ms/series (of {modelled} series modelled)")
        for step, seconds in timings.items():
            print(f"{step:<10}{seconds:8.1f}  {1000 * seconds / modelled:9.2f}")
        print("backtest fit+predict seconds per model (summed over partitions): "
              + json.dumps({m: round(s, 1) for m, s in sorted(per_model.items(), key=lambda kv: -kv[1])}))
        print(f"scale n={args.n} partitions={len(partitions)} model_s={model_s:.1f} "
              f"ms_per_series={1000 * model_s / modelled:.2f} peak_partition_rss_mb={max(peaks.values()):.0f}")
    finally:
        if data_dir is not None:
            stop_embedded_server(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
