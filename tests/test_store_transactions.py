"""Writes are all-or-nothing and concurrent writers of one series serialise on its advisory lock."""

from __future__ import annotations

import multiprocessing as mp

import pandas as pd
import psycopg
import pytest
from conftest import make_series

from forecasting.store import writers
from forecasting.store.diff import Outcome
from forecasting.store.selectors import series_read, series_versions_list
from forecasting.store.writers import SeriesMeta, series_upsert

META = SeriesMeta(source="csv", name="sales", params={}, frequency="D")


class _InjectedFault(RuntimeError):
    pass


def _state(conn: psycopg.Connection) -> tuple:
    return (
        conn.execute("SELECT count(*) FROM observations").fetchone()[0],
        conn.execute("SELECT count(*), max(version_no) FROM series_versions").fetchone(),
        conn.execute("SELECT count(*) FROM observations WHERE valid_to IS NOT NULL").fetchone()[0],
    )


def _fail_after_copy(monkeypatch):
    real_copy = writers._copy_rows

    def copy_then_fail(conn, **kwargs):
        real_copy(conn, **kwargs)  # the rows really reach the server before the fault
        raise _InjectedFault("disk full (injected)")

    monkeypatch.setattr(writers, "_copy_rows", copy_then_fail)


def test_fault_during_a_revision_leaves_no_partial_version(conn, monkeypatch):
    original = make_series(50)
    series_upsert(conn, meta=META, frame=original)
    before = _state(conn)
    revised = original.assign(value=original["value"] + 1)
    _fail_after_copy(monkeypatch)

    with pytest.raises(_InjectedFault):
        series_upsert(conn, meta=META, frame=revised)

    assert _state(conn) == before
    versions = series_versions_list(conn, name="sales")
    assert versions[["version_no", "is_current"]].values.tolist() == [[1, True]]
    pd.testing.assert_frame_equal(series_read(conn, name="sales"), original)


def test_fault_during_a_first_load_leaves_nothing(conn, monkeypatch):
    _fail_after_copy(monkeypatch)
    with pytest.raises(_InjectedFault):
        series_upsert(conn, meta=META, frame=make_series(20))
    assert _state(conn) == (0, (0, None), 0)


def _worker(url: str, frame: pd.DataFrame, barrier, results) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        barrier.wait(timeout=30)
        result = series_upsert(conn, meta=META, frame=frame)
        results.put(result.outcome.value)


def _race(url: str, frame: pd.DataFrame, processes: int = 2) -> list[str]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, frame, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return sorted(results.get(timeout=5) for _ in workers)


def test_concurrent_processes_create_exactly_one_version(database, conn):
    original = make_series(200)
    # first load raced too: both processes find no series row at the start
    assert _race(database.url, original) == sorted([Outcome.INITIAL.value, Outcome.UNCHANGED.value])

    revised = original.assign(value=original["value"] * 1.5)
    assert _race(database.url, revised) == sorted([Outcome.REVISED.value, Outcome.UNCHANGED.value])

    versions = series_versions_list(conn, name="sales")
    assert versions["version_no"].tolist() == [1, 2]
    assert versions["is_current"].tolist() == [False, True]
    duplicates = conn.execute(
        "SELECT count(*) FROM (SELECT series_id, ts, valid_from FROM observations "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
    ).fetchone()[0]
    assert duplicates == 0
    assert conn.execute("SELECT count(*) FROM observations").fetchone()[0] == 400
    pd.testing.assert_frame_equal(series_read(conn, name="sales", version=1), original)
    pd.testing.assert_frame_equal(series_read(conn, name="sales"), revised)


def _batch_worker(url: str, frames: list[pd.DataFrame], reverse: bool, barrier, results) -> None:
    from forecasting.store.batch_writer import UpsertItem, series_upsert_many

    items = [UpsertItem(SeriesMeta(source="csv", name=f"b{i}", frequency="D"), f) for i, f in enumerate(frames)]
    ordered = items[::-1] if reverse else items
    with psycopg.connect(url, autocommit=True) as conn:
        barrier.wait(timeout=30)
        stored = series_upsert_many(conn, ordered)
    results.put(sorted((item.meta.name, result.outcome.value) for item, result in zip(ordered, stored, strict=True)))


def _race_batches(url: str, frames: list[pd.DataFrame]) -> list[list[tuple[str, str]]]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_batch_worker, args=(url, frames, reverse, barrier, results))
               for reverse in (False, True)]  # opposite orders: the id-ordered locking must not deadlock
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=90)
        assert worker.exitcode == 0
    return [results.get(timeout=5) for _ in workers]


def test_concurrent_batched_writers_create_exactly_one_version_per_series(database, conn):
    frames = [make_series(60, seed=i) for i in range(40)]
    for expected_new in ("initial", "revised"):
        first, second = _race_batches(database.url, frames)
        for (name, a), (_, b) in zip(first, second, strict=True):
            assert sorted([a, b]) == sorted([expected_new, "unchanged"]), name
        frames = [f.assign(value=f["value"] * 1.5) for f in frames]
    assert _store_is_consistent(conn) == {"versions": 80, "observations": 40 * 60 * 2}


_KILLED_INGEST = """
import sys, time
from pathlib import Path
import yaml
from forecasting.config import load_config
from forecasting.db import Database
from forecasting.ingest.pipeline import ingest
from forecasting.store import batch_writer

url, config_path, marker, pause_at = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
real = batch_writer._write_batch
calls = []

def write_then_pause(conn, ready, ingest_run_id):
    results = real(conn, ready, ingest_run_id)
    calls.append(1)
    if len(calls) == pause_at:  # every row of this batch is sent; its transaction is still open
        marker.write_text("in batch")
        time.sleep(120)
    return results

batch_writer._write_batch = write_then_pause
ingest(Database(url=url), load_config(config_path))
"""


def _store_is_consistent(conn: psycopg.Connection) -> dict[str, int]:
    """Every stored series has one current version holding exactly its current rows; returns counts."""
    broken = conn.execute(
        "SELECT s.name FROM series s LEFT JOIN series_versions v ON v.series_id = s.series_id AND v.is_current "
        "WHERE EXISTS (SELECT 1 FROM observations o WHERE o.series_id = s.series_id) AND (v.version_id IS NULL OR "
        "v.row_count <> (SELECT count(*) FROM observations o WHERE o.series_id = s.series_id AND o.valid_to IS NULL))"
    ).fetchall()
    assert broken == [], f"half-written series: {broken[:5]}"
    doubled = conn.execute("SELECT series_id FROM series_versions WHERE is_current GROUP BY 1 HAVING count(*) > 1")
    assert doubled.fetchall() == []
    return {"versions": conn.execute("SELECT count(*) FROM series_versions").fetchone()[0],
            "observations": conn.execute("SELECT count(*) FROM observations").fetchone()[0]}


def test_kill_9_during_a_batched_shard_write_leaves_whole_series_only(database, conn, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    import yaml

    from forecasting.config import load_config
    from forecasting.ingest.pipeline import ingest
    from forecasting.store.batch_writer import BATCH_SIZE

    n, points = BATCH_SIZE + 50, 30
    days = pd.date_range("2024-01-01", periods=points, freq="D").strftime("%Y-%m-%d")
    series = []
    for i in range(n):
        path = tmp_path / f"s{i}.csv"
        pd.DataFrame({"ts": days, "value": np.arange(points) + i}).to_csv(path, index=False)
        series.append({"name": f"s{i}", "source": "csv", "params": {"path": str(path)}})
    config_path = tmp_path / "kill.yaml"
    config_path.write_text(yaml.safe_dump({"name": "kill", "series": series, "ingest": {"retries": 0}}))

    def killed_ingest(pause_at: int | None, delay: float | None = None) -> None:
        marker = tmp_path / "marker"
        marker.unlink(missing_ok=True)
        child = subprocess.Popen([sys.executable, "-c", _KILLED_INGEST, database.url, str(config_path), str(marker),
                                  str(pause_at or 0)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            if pause_at:
                while not marker.exists():
                    assert child.poll() is None and time.monotonic() < deadline, "the writer never reached its batch"
                    time.sleep(0.05)
            else:
                time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)

    # killed inside the second batch's transaction: the first batch is committed whole, the second left nothing
    killed_ingest(pause_at=2)
    counts = _store_is_consistent(conn)
    assert counts == {"versions": BATCH_SIZE, "observations": BATCH_SIZE * points}
    # killed at arbitrary moments: never a half-written series
    for delay in (4.0, 5.5, 7.0):
        killed_ingest(pause_at=None, delay=delay)
        _store_is_consistent(conn)
    report = ingest(database, load_config(config_path))  # a re-run completes the rest, duplicating nothing
    assert {r.outcome for r in report.records} <= {"initial", "unchanged"}
    assert _store_is_consistent(conn) == {"versions": n, "observations": n * points}
