"""Store benchmark: version-aware upsert of many series against a bare COPY floor (not a test).

    python benchmarks/store_upsert.py                 # 1,000 series x 1,000 points on a fresh embedded server
    python benchmarks/store_upsert.py --series 200 --points 500 --database-url postgresql://...

Phases, each timed with its peak resident memory above the phase's start:
  before       the previous writer (psycopg text COPY, one write_row per row) and its text COPY floor
  floor        one bare binary COPY of all rows into an unindexed table (the fastest the server takes them)
  first load   series_upsert of every series (one transaction per series, version 1)
  unchanged    the same downloads again: nothing to write
  revised      the same downloads with a fraction of the series rewritten (10 past values each)
Series are generated one at a time, so memory should stay near one series batch; the whole data set
in memory is printed for comparison. Validation (Great Expectations) is not part of this benchmark.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
from common import PeakRss, scratch_database

from forecasting.db import apply_migrations
from forecasting.store import writers
from forecasting.store.binary_copy import COPY_HEADER, COPY_TRAILER, observation_records
from forecasting.store.writers import SeriesMeta, series_upsert

START = np.datetime64("2015-01-01")


def series_frame(index: int, points: int, *, revised: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(index)
    values = (100 + rng.normal(0, 1, points).cumsum()).round(4)
    if revised:  # a renormalisation-like rewrite of 10 past values
        positions = rng.choice(points - 1, size=10, replace=False)
        values[positions] = (values[positions] * 1.05).round(4)
    ts = START + np.arange(points).astype("timedelta64[D]")
    return pd.DataFrame({"ts": ts.astype("datetime64[ns]"), "value": values})


@dataclass
class Phase:
    name: str
    seconds: float
    rows: int
    rss_growth_mb: float
    peak_rss_mb: float
    note: str = ""


def measure(name: str, rows: int, work: Callable[[], str]) -> Phase:
    with PeakRss() as mem:
        started = time.perf_counter()
        note = work()
        seconds = time.perf_counter() - started
    return Phase(name, seconds, rows, (mem.peak - mem.start) / 2**20, mem.peak / 2**20, note)


def _bare_table(conn: psycopg.Connection, name: str) -> None:
    conn.execute(
        f"CREATE TABLE {name} (series_id bigint, ts timestamp, value double precision, valid_from int, "
        "ingest_run_id bigint)"
    )


def bare_copy_binary(conn: psycopg.Connection, n_series: int, points: int) -> str:
    """The floor: every row in one binary COPY stream into an unindexed table, same encoder as the store."""
    _bare_table(conn, "bare_binary")
    with conn.transaction(), conn.cursor() as cur, cur.copy("COPY bare_binary FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(COPY_HEADER)
        for i in range(n_series):
            frame = series_frame(i, points)
            ts_us = frame["ts"].to_numpy(dtype="datetime64[us]").astype("int64")
            copy.write(
                observation_records(
                    series_id=i, ts_us=ts_us, values=frame["value"].to_numpy(), valid_from=1, ingest_run_id=None
                )
            )
        copy.write(COPY_TRAILER)
    return ""


def bare_copy_text(conn: psycopg.Connection, n_series: int, points: int) -> str:
    """The same floor with psycopg's per-row text COPY (what the store used before the binary encoder)."""
    _bare_table(conn, "bare_text")
    with conn.transaction(), conn.cursor() as cur, cur.copy("COPY bare_text FROM STDIN") as copy:
        for i in range(n_series):
            frame = series_frame(i, points)
            stamps = frame["ts"].to_numpy(dtype="datetime64[us]").tolist()
            for stamp, value in zip(stamps, frame["value"].tolist(), strict=True):
                copy.write_row((i, stamp, value, 1, None))
    return ""


def _text_copy_rows(conn, *, series_id, ts, values, valid_from, ingest_run_id) -> int:
    """The store's previous row writer (text COPY, one write_row per row), kept to show before/after."""
    stamps = ts.astype("datetime64[us]").tolist()
    sql = "COPY observations (series_id, ts, value, valid_from, ingest_run_id) FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for stamp, value in zip(stamps, values.tolist(), strict=True):
            copy.write_row((series_id, stamp, value, valid_from, ingest_run_id))
    return len(ts)


def first_load_text_writer(conn: psycopg.Connection, n_series: int, points: int) -> str:
    real = writers._copy_rows
    writers._copy_rows = _text_copy_rows
    try:
        return upsert_all(conn, n_series, points, source="bench_text")
    finally:
        writers._copy_rows = real


def upsert_all(
    conn: psycopg.Connection, n_series: int, points: int, revised: set[int] | None = None, source: str = "bench"
) -> str:
    outcomes: dict[str, int] = {}
    written = 0
    for i in range(n_series):
        frame = series_frame(i, points, revised=revised is not None and i in revised)
        result = series_upsert(conn, meta=SeriesMeta(source=source, name=f"s{i}"), frame=frame)
        outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
        written += result.n_written
    return ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) + f"; rows written={written}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--revised-fraction", type=float, default=0.05)
    parser.add_argument("--database-url", help="server to use (default: a fresh embedded PostgreSQL)")
    args = parser.parse_args(argv)
    n, points = args.series, args.points
    total = n * points
    rng = np.random.default_rng(0)
    revised = set(rng.choice(n, size=max(1, int(n * args.revised_fraction)), replace=False).tolist())

    with scratch_database(args.database_url) as url, psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        before = [
            measure("bare COPY, text", total, lambda: bare_copy_text(conn, n, points)),
            measure("first load, text writer", total, lambda: first_load_text_writer(conn, n, points)),
        ]
        phases = [
            measure("bare COPY (floor)", total, lambda: bare_copy_binary(conn, n, points)),
            measure("first load", total, lambda: upsert_all(conn, n, points)),
            measure("unchanged reload", total, lambda: upsert_all(conn, n, points)),
            measure(f"reload, {len(revised)} revised", total, lambda: upsert_all(conn, n, points, revised)),
        ]
        stored = conn.execute(
            "SELECT count(*) FROM observations WHERE series_id IN (SELECT series_id FROM series WHERE source = 'bench')"
        ).fetchone()[0]

    whole = series_frame(0, points).memory_usage(deep=True).sum() * n / 2**20
    print(
        f"\n{n:,} series x {points:,} points = {total:,} rows; whole data set in memory ~{whole:.0f} MB; "
        f"one series ~{whole / n * 1024:.0f} KB"
    )
    print(f"{'phase':<24}{'seconds':>9}{'rows/s':>12}{'RSS growth MB':>15}{'peak RSS MB':>13}  outcome")
    for p in before + phases:
        print(
            f"{p.name:<24}{p.seconds:>9.2f}{p.rows / p.seconds:>12,.0f}{p.rss_growth_mb:>15.1f}"
            f"{p.peak_rss_mb:>13.0f}  {p.note}"
        )
    floor, first, unchanged, rev = phases
    print(
        f"\nbefore (text COPY writer): first load {before[1].seconds:.2f}s = "
        f"{before[1].seconds / before[0].seconds:.2f}x its text floor; after: {first.seconds:.2f}s "
        f"({before[1].seconds / first.seconds:.1f}x faster)"
    )
    print(f"\nfirst load / bare binary COPY = {first.seconds / floor.seconds:.2f}x   (target <= 3x)")
    print(f"first load / bare text COPY   = {first.seconds / before[0].seconds:.2f}x")
    print(f"first load / unchanged        = {first.seconds / unchanged.seconds:.1f}x   (target >= 5x)")
    print(f"observation rows stored       = {stored:,} (first load {total:,} + revised rows only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
