"""Ingest benchmark: download (CSV), validation and version-aware storage of N series, against the COPY floor.

    python benchmarks/ingest.py                                  # 1,000 series x 1,000 points
    python benchmarks/ingest.py --series 10000 --points 200
    python benchmarks/ingest.py --series 1000 --points 200 --compare faaa0ff   # before/after in one run
    python benchmarks/ingest.py --series 10000 --points 200 --long           # one long CSV, series_column

Writes N CSV files of P daily points (one config block each; with --long, one file with a series-id column
and one block), then times, each on a fresh embedded PostgreSQL unless --database-url is given:
  floor       one bare binary COPY of the same rows into an unindexed table (the fastest the server takes them)
  store COPY  the same COPY into a table like the store's observations, with its keys (the store's own floor)
  CSV COPY    the CSV files' bytes in one COPY (FORMAT csv): reading the files, with no per-series work
  first       `forecasting ingest` of every series: read, validate (Great Expectations), store version 1
  unchanged   the same files again: nothing changed
  revised     --revised-fraction of the files rewritten (10 past values each): new versions
Peak RSS is this process's resident memory, sampled during each phase. --compare REF runs the same
benchmark on the code of git ref REF (a temporary worktree) in a subprocess first, and prints both.
The last line reads
  ingest N=... P=... first_s=... copy_floor_s=... first_vs_copy=... unchanged_ms_per_series=... peak_rss_mb=...
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from common import PeakRss, scratch_database

from forecasting.config import parse_config
from forecasting.db import Database, apply_migrations
from forecasting.ingest.pipeline import ingest
from forecasting.store.binary_copy import COPY_HEADER, COPY_TRAILER, observation_records

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2015-01-01")


def series_values(index: int, points: int, *, revised: bool = False) -> np.ndarray:
    rng = np.random.default_rng(index)
    values = (100 + rng.normal(0, 1, points).cumsum()).round(4)
    if revised:  # a renormalisation-like rewrite of 10 past values
        positions = rng.choice(points - 1, size=min(10, points - 1), replace=False)
        values[positions] = (values[positions] * 1.05).round(4)
    return values


def day_strings(points: int) -> np.ndarray:
    return np.datetime_as_string(START + np.arange(points).astype("timedelta64[D]"), unit="D")


def write_files(folder: Path, n: int, points: int, *, long: bool, revised: set[int] = frozenset()) -> list[dict]:
    """The CSV files and the config's series blocks."""
    days = day_strings(points)
    if long:
        path = folder / "long.csv"
        with path.open("w", encoding="utf-8") as out:
            out.write("id,ts,value\n")
            for i in range(n):
                values = series_values(i, points, revised=i in revised)
                pd.DataFrame({"id": f"s{i:06d}", "ts": days, "value": values}).to_csv(out, header=False, index=False)
        return [{"name": "all", "source": "csv", "params": {"path": str(path), "series_column": "id"}}]
    blocks = []
    for i in range(n):
        path = folder / f"s{i:06d}.csv"
        if not revised or i in revised:
            values = series_values(i, points, revised=i in revised)
            pd.DataFrame({"ts": days, "value": values}).to_csv(path, index=False)
        blocks.append({"name": f"s{i:06d}", "source": "csv", "params": {"path": str(path)}})
    return blocks


@dataclass
class Phase:
    name: str
    seconds: float
    peak_rss_mb: float
    note: str = ""


def measure(name: str, work: Callable[[], str]) -> Phase:
    with PeakRss() as mem:
        started = time.perf_counter()
        note = work()
        seconds = time.perf_counter() - started
    return Phase(name, seconds, mem.peak / 2**20, note)


def bare_copy(url: str, n: int, points: int) -> str:
    """The floor: every row in one binary COPY into an unindexed table, with the store's own encoder."""
    return _binary_copy(url, n, points, "CREATE TABLE bare (series_id bigint, ts timestamp, value double precision, "
                                        "valid_from int, ingest_run_id bigint)", "bare")


def store_table_copy(url: str, n: int, points: int) -> str:
    """The floor of the store itself: the same COPY into a copy of the observations table with its keys (the
    primary key and the one-current-row-per-timestamp index that make duplicates impossible)."""
    return _binary_copy(url, n, points, "CREATE TABLE observations_floor (LIKE observations INCLUDING ALL); "
                        "CREATE UNIQUE INDEX ON observations_floor (series_id, ts) WHERE valid_to IS NULL",
                        "observations_floor")


def _binary_copy(url: str, n: int, points: int, create: str, table: str) -> str:
    ts_us = (START + np.arange(points).astype("timedelta64[D]")).astype("datetime64[us]").astype("int64")
    with psycopg.connect(url) as conn:
        conn.execute(create)
        columns = "series_id, ts, value, valid_from, ingest_run_id"
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for i in range(n):
                copy.write(observation_records(series_id=i, ts_us=ts_us, values=series_values(i, points),
                                               valid_from=1, ingest_run_id=None))
            copy.write(COPY_TRAILER)
    return f"{n * points:,} rows"


def csv_copy(url: str, blocks: list[dict]) -> str:
    """A second reference: the CSV files' bytes streamed into one COPY (FORMAT csv) that the server parses, i.e.
    the cost of just reading the files and getting their rows in, with no per-series work at all."""
    paths = sorted({block["params"]["path"] for block in blocks})
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE bare_csv (ts timestamp, value double precision)"
                     if "series_column" not in blocks[0]["params"] else
                     "CREATE TABLE bare_csv (id text, ts timestamp, value double precision)")
        with conn.cursor() as cur, cur.copy("COPY bare_csv FROM STDIN (FORMAT csv)") as copy:
            for path in paths:
                with open(path, "rb") as handle:
                    handle.readline()  # the header
                    copy.write(handle.read())
    return f"{len(paths):,} file(s)"


def run_ingest(database: Database, config) -> str:
    report = ingest(database, config)
    outcomes: dict[str, int] = {}
    for record in report.records:
        outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
    return ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))


def benchmark(args: argparse.Namespace) -> list[Phase]:
    n, points = args.series, args.points
    rng = np.random.default_rng(0)
    revised = set(rng.choice(n, size=max(1, int(n * args.revised_fraction)), replace=False).tolist())
    folder = Path(tempfile.mkdtemp(prefix="forecasting-bench-csv-"))
    try:
        blocks = write_files(folder, n, points, long=args.long)
        config = parse_config({"name": "bench", "series": blocks, "ingest": {"retries": 0}})
        with scratch_database(args.database_url) as url:
            with psycopg.connect(url) as conn:
                apply_migrations(conn)
            database = Database(url=url)
            phases = [measure("bare COPY (floor)", lambda: bare_copy(url, n, points)),
                      measure("store table COPY", lambda: store_table_copy(url, n, points)),
                      measure("CSV files COPY", lambda: csv_copy(url, blocks)),
                      measure("first", lambda: run_ingest(database, config)),
                      measure("unchanged", lambda: run_ingest(database, config))]
            write_files(folder, n, points, long=args.long, revised=revised)
            phases.append(measure(f"revised ({len(revised)})", lambda: run_ingest(database, config)))
        return phases
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(phases: list[Phase], n: int, points: int, label: str) -> str:
    print(f"\n{label}: {n:,} series x {points:,} points")
    print(f"{'phase':<20}{'seconds':>9}{'ms/series':>11}{'peak RSS MB':>13}  outcome")
    for p in phases:
        print(f"{p.name:<20}{p.seconds:>9.2f}{p.seconds * 1000 / n:>11.2f}{p.peak_rss_mb:>13.0f}  {p.note}")
    by_name = {p.name: p for p in phases}
    floor, store_floor = by_name["bare COPY (floor)"], by_name["store table COPY"]
    first, unchanged = by_name["first"], by_name["unchanged"]
    peak = max(p.peak_rss_mb for p in phases[phases.index(first):])
    return (f"ingest N={n} P={points} first_s={first.seconds:.1f} copy_floor_s={floor.seconds:.2f} "
            f"first_vs_copy={first.seconds / floor.seconds:.2f} "
            f"unchanged_ms_per_series={unchanged.seconds * 1000 / n:.2f} peak_rss_mb={peak:.0f} "
            f"store_floor_s={store_floor.seconds:.2f} first_vs_store_floor={first.seconds / store_floor.seconds:.2f}")


def compare(ref: str, argv: list[str]) -> str:
    """The same benchmark on ``ref``'s package, in a subprocess; returns its last line."""
    worktree = Path(tempfile.mkdtemp(prefix="forecasting-bench-ref-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), ref], check=True,
                   capture_output=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(worktree), "FORECASTING_SQL_DIR": str(worktree / "sql")}
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--label", f"before ({ref})"],
                             cwd=worktree, env=env, check=True, capture_output=True, text=True)
        print(out.stdout, end="")
        return out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--revised-fraction", type=float, default=0.05)
    parser.add_argument("--long", action="store_true", help="one long CSV with a series-id column")
    parser.add_argument("--database-url", help="server to use (default: a fresh embedded PostgreSQL)")
    parser.add_argument("--compare", metavar="REF", help="also run the benchmark on git ref REF, first")
    parser.add_argument("--label", default="after", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("forecasting").setLevel(logging.ERROR)  # per-series warnings are not the point here
    before = None
    if args.compare:
        own = [a for i, a in enumerate(argv) if a != "--compare" and (i == 0 or argv[i - 1] != "--compare")]
        before = compare(args.compare, own)
    line = report(benchmark(args), args.series, args.points, args.label if before is None else "after (this tree)")
    if before is not None:
        print("\n" + before.replace("ingest ", "before: ingest ", 1))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
