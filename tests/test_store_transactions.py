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
