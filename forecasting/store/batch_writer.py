"""Version-aware upsert of many series at once: the guarantees of ``series_upsert``, a few round trips per batch.

A batch is one transaction. It takes every series' advisory lock (in id order, so two writers of
overlapping batches cannot deadlock), reads the current versions and rows of the whole batch in one query
each, and writes every new observation row in one binary COPY. A series still gets exactly one new version
per change, and a crash or fault leaves nothing of the batch: the transaction is all-or-nothing. A batch that
fails is written again one series at a time, so one bad series costs only itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg

from forecasting.errors import StoreError
from forecasting.store.binary_copy import COPY_HEADER, COPY_TRAILER, observation_records
from forecasting.store.diff import Outcome, diff_versions
from forecasting.store.writers import (
    DEFAULT_RTOL,
    CanonicalArrays,
    SeriesMeta,
    UpsertResult,
    _Current,
    _stamp,
    _write_revision,
    params_json,
    series_upsert,
    storable_arrays,
)

__all__ = ["BATCH_SIZE", "UpsertItem", "series_upsert_many"]

_log = logging.getLogger(__name__)

# series per transaction: large enough that round trips stop mattering, small enough that a batch's rows
# (200 series x 1,000 points ~ 5 MB of COPY data) and its lock set stay small
BATCH_SIZE = 200

_COPY_SQL = "COPY observations (series_id, ts, value, valid_from, ingest_run_id) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True)
class UpsertItem:
    meta: SeriesMeta
    frame: pd.DataFrame
    rtol: float = DEFAULT_RTOL
    arrays: CanonicalArrays | None = None  # the frame's, when the caller already took them


@dataclass
class _Prepared:
    item: UpsertItem
    ts: np.ndarray
    values: np.ndarray
    sha: str
    series_id: int = 0


def series_upsert_many(conn: psycopg.Connection, items: Sequence[UpsertItem], *,
                       ingest_run_id: int | None = None) -> list[UpsertResult | Exception]:
    """Store validated downloads; per item its result, or the error that kept that item (alone) out."""
    results: list[UpsertResult | Exception] = []
    for start in range(0, len(items), BATCH_SIZE):
        results.extend(_upsert_batch_or_each(conn, items[start:start + BATCH_SIZE], ingest_run_id))
    return results


def _upsert_batch_or_each(conn: psycopg.Connection, items: Sequence[UpsertItem],
                          ingest_run_id: int | None) -> list[UpsertResult | Exception]:
    prepared: list[_Prepared | Exception] = []
    for item in items:
        try:
            arrays = item.arrays or storable_arrays(item.frame, item.meta.name)
            prepared.append(_Prepared(item, arrays.ts, arrays.values, arrays.sha))
        except StoreError as exc:
            prepared.append(exc)
    ready = [p for p in prepared if isinstance(p, _Prepared)]
    try:
        with conn.transaction():
            written = dict(zip(map(id, ready), _write_batch(conn, ready, ingest_run_id), strict=True))
    except (psycopg.Error, StoreError, ValueError) as exc:  # one series' fault: write them one by one
        _log.warning("batched write of %d series failed (%s); writing them one at a time", len(ready), exc)
        written = {id(p): _upsert_one(conn, p.item, ingest_run_id) for p in ready}
    return [p if isinstance(p, Exception) else written[id(p)] for p in prepared]


def _upsert_one(conn: psycopg.Connection, item: UpsertItem, ingest_run_id: int | None) -> UpsertResult | Exception:
    try:
        return series_upsert(conn, meta=item.meta, frame=item.frame, ingest_run_id=ingest_run_id, rtol=item.rtol)
    except Exception as exc:  # noqa: BLE001 - reported as this series' failure, with its traceback logged
        _log.exception("series %r: store failed", item.meta.name)
        return exc


def _write_batch(conn: psycopg.Connection, ready: list[_Prepared], ingest_run_id: int | None) -> list[UpsertResult]:
    if not ready:
        return []
    ids = _ensure_series(conn, [p.item.meta for p in ready])
    for p in ready:
        p.series_id = ids[(p.item.meta.source, p.item.meta.name)]
    # in id order: two batches that share series lock them in the same order
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('forecasting.series', id)) "
                 "FROM unnest(%s::bigint[]) AS id", (sorted({p.series_id for p in ready}),))
    current = _current_versions(conn, [p.series_id for p in ready])
    differing = [p.series_id for p in ready if p.series_id in current and current[p.series_id].download_sha256 != p.sha]
    old_rows = _current_rows_many(conn, differing)
    results: dict[int, UpsertResult] = {}
    copy_chunks: list[bytes] = []
    new_versions: list[_Prepared] = []
    extensions: list[tuple] = []
    tolerated: list[tuple] = []
    for p in ready:
        now = current.get(p.series_id)
        if now is not None and now.download_sha256 == p.sha:
            results[id(p)] = UpsertResult(Outcome.UNCHANGED, p.series_id, now.version_id, now.version_no, now.row_count)
            continue
        old_ts, old_values = old_rows.get(p.series_id, (np.empty(0, "int64"), np.empty(0)))
        diff = diff_versions(old_ts, old_values, p.ts, p.values, rtol=p.item.rtol)
        if diff.outcome is Outcome.INITIAL:
            new_versions.append(p)
            copy_chunks.append(observation_records(series_id=p.series_id, ts_us=p.ts, values=p.values, valid_from=1,
                                                   ingest_run_id=ingest_run_id))
        elif diff.outcome is Outcome.EXTENDED:
            added = diff.added_new
            copy_chunks.append(observation_records(series_id=p.series_id, ts_us=p.ts[added], values=p.values[added],
                                                   valid_from=now.version_no, ingest_run_id=ingest_run_id))
            extensions.append((len(added), len(added), _stamp(p.ts, -1), p.sha, now.version_id))
            results[id(p)] = UpsertResult(Outcome.EXTENDED, p.series_id, now.version_id, now.version_no,
                                          now.row_count + len(added), n_added=len(added), n_written=len(added))
        elif diff.outcome is Outcome.UNCHANGED:  # equal within tolerance: the next identical download is fast
            tolerated.append((p.sha, now.version_id))
            results[id(p)] = UpsertResult(Outcome.UNCHANGED, p.series_id, now.version_id, now.version_no, now.row_count)
        else:  # revisions are few; each closes and writes its own rows
            results[id(p)] = _write_revision(conn, series_id=p.series_id, meta=p.item.meta, current=now,
                                             old_ts=old_ts, ts=p.ts, values=p.values, sha=p.sha, diff=diff,
                                             ingest_run_id=ingest_run_id)
    for p, version_id in zip(new_versions, _insert_initial_versions(conn, new_versions, ingest_run_id), strict=True):
        results[id(p)] = UpsertResult(Outcome.INITIAL, p.series_id, version_id, 1, len(p.ts), n_added=len(p.ts),
                                      n_written=len(p.ts))
    with conn.cursor() as cur:
        if extensions:
            cur.executemany("UPDATE series_versions SET row_count = row_count + %s, n_extended = n_extended + %s, "
                            "last_ts = %s, download_sha256 = %s WHERE version_id = %s", extensions)
        if tolerated:
            cur.executemany("UPDATE series_versions SET download_sha256 = %s WHERE version_id = %s", tolerated)
    if copy_chunks:
        with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
            copy.write(COPY_HEADER)
            for chunk in copy_chunks:
                copy.write(chunk)
            copy.write(COPY_TRAILER)
    return [results[id(p)] for p in ready]


def _ensure_series(conn: psycopg.Connection, metas: list[SeriesMeta]) -> dict[tuple[str, str], int]:
    """Series ids by (source, name), creating missing rows and refreshing changed descriptions. Arrays go in
    binary (%b): the text form escapes every JSON quote of every series' parameters with a regex."""
    keys = [(m.source, m.name) for m in metas]
    sources, names = [k[0] for k in keys], [k[1] for k in keys]
    params = [params_json(m.params) for m in metas]
    conn.execute(
        "INSERT INTO series (source, name, params, frequency, unit, config_name) "
        "SELECT * FROM unnest(%b::text[], %b::text[], %b::jsonb[], %b::text[], %b::text[], %b::text[]) "
        "ON CONFLICT (source, name) DO NOTHING",
        (sources, names, params, [m.frequency for m in metas], [m.unit for m in metas],
         [m.config_name for m in metas]),
    )
    # a description that changed (or an owner recorded for the first time) is refreshed, as series_ensure does
    conn.execute(
        "UPDATE series s SET params = n.params, frequency = n.frequency, unit = n.unit, updated_at = now(), "
        "config_name = coalesce(s.config_name, n.config_name) "
        "FROM unnest(%b::text[], %b::text[], %b::jsonb[], %b::text[], %b::text[], %b::text[]) "
        "AS n(source, name, params, frequency, unit, config_name) "
        "WHERE s.source = n.source AND s.name = n.name AND (s.params, s.frequency, s.unit) IS DISTINCT FROM "
        "(n.params, n.frequency, n.unit) OR (s.source = n.source AND s.name = n.name AND s.config_name IS NULL "
        "AND n.config_name IS NOT NULL)",
        (sources, names, params, [m.frequency for m in metas], [m.unit for m in metas],
         [m.config_name for m in metas]),
    )
    rows = conn.execute(
        "SELECT s.source, s.name, s.series_id FROM series s "
        "JOIN unnest(%s::text[], %s::text[]) AS k(source, name) ON s.source = k.source AND s.name = k.name",
        (sources, names),
    ).fetchall()
    return {(source, name): series_id for source, name, series_id in rows}


def _current_versions(conn: psycopg.Connection, series_ids: list[int]) -> dict[int, _Current]:
    rows = conn.execute(
        "SELECT series_id, version_id, version_no, download_sha256, row_count FROM series_versions "
        "WHERE series_id = ANY(%s) AND is_current", (series_ids,),
    ).fetchall()
    return {row[0]: _Current(*row[1:]) for row in rows}


def _current_rows_many(conn: psycopg.Connection, series_ids: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    if not series_ids:
        return {}
    rows = conn.execute(
        "SELECT series_id, (extract(epoch FROM ts) * 1000000)::bigint, value FROM observations "
        "WHERE series_id = ANY(%s) AND valid_to IS NULL ORDER BY series_id, ts", (series_ids,),
    ).fetchall()
    if not rows:
        return {}
    ids = np.fromiter((r[0] for r in rows), dtype="int64", count=len(rows))
    ts = np.fromiter((r[1] for r in rows), dtype="int64", count=len(rows))
    values = np.fromiter((r[2] for r in rows), dtype="float64", count=len(rows))
    starts = np.r_[0, np.flatnonzero(np.diff(ids)) + 1]
    ends = np.r_[starts[1:], len(ids)]
    return {int(ids[s]): (ts[s:e], values[s:e]) for s, e in zip(starts, ends, strict=True)}


def _insert_initial_versions(conn: psycopg.Connection, prepared: list[_Prepared],
                             ingest_run_id: int | None) -> list[int]:
    if not prepared:
        return []
    rows = conn.execute(
        "INSERT INTO series_versions (series_id, version_no, reason, is_current, row_count, first_ts, last_ts, "
        "download_sha256, source_params, ingest_run_id) "
        "SELECT series_id, 1, 'initial', true, row_count, first_ts, last_ts, sha, params, %s "
        "FROM unnest(%s::bigint[], %s::int[], %s::timestamp[], %s::timestamp[], %s::text[], %b::jsonb[]) "
        "WITH ORDINALITY AS n(series_id, row_count, first_ts, last_ts, sha, params, position) "
        "ORDER BY position RETURNING series_id, version_id",
        (ingest_run_id, [p.series_id for p in prepared], [len(p.ts) for p in prepared],
         [_stamp(p.ts, 0) for p in prepared], [_stamp(p.ts, -1) for p in prepared], [p.sha for p in prepared],
         [params_json(p.item.meta.params) for p in prepared]),
    ).fetchall()
    by_series = dict(rows)
    return [by_series[p.series_id] for p in prepared]
