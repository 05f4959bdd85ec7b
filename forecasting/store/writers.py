"""Version-aware upsert of one series: one transaction, one advisory lock, bulk COPY of the rows it needs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg

from forecasting.errors import StoreError
from forecasting.sources.base import TS, VALUE
from forecasting.store.binary_copy import COPY_HEADER, COPY_TRAILER, observation_records
from forecasting.store.diff import Outcome, VersionDiff, diff_versions, download_sha256

__all__ = ["DEFAULT_RTOL", "SeriesMeta", "UpsertResult", "params_json", "series_ensure", "series_upsert"]

_log = logging.getLogger(__name__)

DEFAULT_RTOL = 1e-9

_COPY_SQL = "COPY observations (series_id, ts, value, valid_from, ingest_run_id) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True)
class SeriesMeta:
    """Identity and description of a series as the configuration and its source define it."""

    source: str
    name: str
    params: dict = field(default_factory=dict)
    frequency: str | None = None
    unit: str | None = None
    config_name: str | None = None  # the config that stores it (recorded by the first one)


@dataclass(frozen=True)
class UpsertResult:
    outcome: Outcome
    series_id: int
    version_id: int
    version_no: int
    n_rows: int  # rows in the current version after the write
    n_added: int = 0
    n_changed: int = 0
    n_removed: int = 0
    n_written: int = 0  # observation rows inserted by this call


@dataclass(frozen=True)
class _Current:
    version_id: int
    version_no: int
    download_sha256: str
    row_count: int


@dataclass(frozen=True)
class CanonicalArrays:
    """A download as the store keeps it: microsecond timestamps, float values and their content hash."""

    ts: np.ndarray
    values: np.ndarray
    sha: str


def frame_arrays(frame: pd.DataFrame, series: str) -> tuple[np.ndarray, np.ndarray]:
    """Microsecond timestamps and float values; refuses frames that break the storage contract."""
    if list(frame.columns[:2]) != [TS, VALUE]:
        raise StoreError(f"series {series!r}: frame must have columns ['ts', 'value'], got {list(frame.columns)}")
    # PostgreSQL timestamps have microsecond resolution; compare in the unit that is stored
    ts = frame[TS].to_numpy(dtype="datetime64[us]").astype("int64")
    try:
        values = frame[VALUE].to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise StoreError(f"series {series!r}: field 'value' is not numeric ({exc})") from exc
    if np.isnan(values).any() or np.isinf(values).any():
        raise StoreError(f"series {series!r}: field 'value' holds NaN or infinite values")
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        raise StoreError(f"series {series!r}: field 'ts' must be strictly increasing (sorted, no duplicates)")
    return ts, values


def storable_arrays(frame: pd.DataFrame, series: str) -> CanonicalArrays:
    """``frame`` as the store keeps it, with its content hash; refuses (StoreError) a frame that breaks the
    storage contract or is empty."""
    ts, values = frame_arrays(frame, series)
    if len(ts) == 0:
        raise StoreError(f"series {series!r}: refusing to store an empty download")
    return CanonicalArrays(ts, values, download_sha256(ts, values))


def params_json(params: dict) -> str:
    """Source parameters as the store keeps them (jsonb): keys sorted, anything not JSON as its text."""
    return json.dumps(params, sort_keys=True, default=str)


def series_ensure(conn: psycopg.Connection, meta: SeriesMeta, *, refresh: bool = True) -> int:
    """Return the series id, creating the row or (``refresh``) refreshing its description when it changed.

    A download that is not stored (quarantined) passes ``refresh=False``: it must change nothing stored about
    the series, or a bad download's inferred frequency would replace the good one."""
    params = params_json(meta.params)
    row = conn.execute(
        "SELECT series_id, params, frequency, unit FROM series WHERE source = %s AND name = %s",
        (meta.source, meta.name),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "INSERT INTO series (source, name, params, frequency, unit, config_name) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (source, name) DO NOTHING RETURNING series_id, params, frequency, unit",
            (meta.source, meta.name, params, meta.frequency, meta.unit, meta.config_name),
        ).fetchone()
        if row is None:  # a concurrent writer created it between our SELECT and INSERT
            return series_ensure(conn, meta, refresh=refresh)
        return row[0]
    series_id, stored_params, frequency, unit = row
    if refresh and (stored_params, frequency, unit) != (json.loads(params), meta.frequency, meta.unit):
        conn.execute(
            "UPDATE series SET params = %s, frequency = %s, unit = %s, updated_at = now() WHERE series_id = %s",
            (params, meta.frequency, meta.unit, series_id),
        )
    if refresh and meta.config_name:  # a series stored before owners were recorded is claimed by its next writer
        conn.execute("UPDATE series SET config_name = %s WHERE series_id = %s AND config_name IS NULL",
                     (meta.config_name, series_id))
    return series_id


def _lock_series(conn: psycopg.Connection, series_id: int) -> None:
    # held until commit/rollback: concurrent upserts of one series run one after the other
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('forecasting.series', %s))", (series_id,))


def _current_version(conn: psycopg.Connection, series_id: int) -> _Current | None:
    row = conn.execute(
        "SELECT version_id, version_no, download_sha256, row_count FROM series_versions "
        "WHERE series_id = %s AND is_current",
        (series_id,),
    ).fetchone()
    return _Current(*row) if row else None


def _current_rows(conn: psycopg.Connection, series_id: int) -> tuple[np.ndarray, np.ndarray]:
    rows = conn.execute(
        "SELECT (extract(epoch FROM ts) * 1000000)::bigint, value FROM observations "
        "WHERE series_id = %s AND valid_to IS NULL ORDER BY ts",
        (series_id,),
    ).fetchall()
    if not rows:
        return np.empty(0, dtype="int64"), np.empty(0, dtype="float64")
    ts, values = zip(*rows, strict=True)
    return np.asarray(ts, dtype="int64"), np.asarray(values, dtype="float64")


def _copy_rows(
    conn: psycopg.Connection,
    *,
    series_id: int,
    ts: np.ndarray,
    values: np.ndarray,
    valid_from: int,
    ingest_run_id: int | None,
) -> int:
    if len(ts) == 0:
        return 0
    records = observation_records(
        series_id=series_id, ts_us=ts, values=values, valid_from=valid_from, ingest_run_id=ingest_run_id
    )
    with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
        copy.write(COPY_HEADER + records + COPY_TRAILER)
    return len(ts)


def _stamp(ts_us: np.ndarray, index: int):
    """A stored microsecond timestamp as a Python datetime."""
    return np.datetime64(int(ts_us[index]), "us").item()


def _insert_version(
    conn: psycopg.Connection,
    *,
    series_id: int,
    version_no: int,
    parent_id: int | None,
    diff: VersionDiff,
    ts: np.ndarray,
    sha: str,
    meta: SeriesMeta,
    ingest_run_id: int | None,
) -> int:
    """A new current version holding the download ``ts``; the diff counts apply to revisions only."""
    revised = parent_id is not None
    return conn.execute(
        "INSERT INTO series_versions (series_id, version_no, reason, is_current, parent_version_id, n_changed, "
        "n_added, n_removed, row_count, first_ts, last_ts, download_sha256, source_params, ingest_run_id) "
        "VALUES (%s, %s, %s, true, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING version_id",
        (
            series_id, version_no, "revised" if revised else "initial", parent_id,
            diff.n_changed if revised else 0, diff.n_added if revised else 0, diff.n_removed if revised else 0,
            len(ts), _stamp(ts, 0), _stamp(ts, -1), sha,
            params_json(meta.params), ingest_run_id,
        ),
    ).fetchone()[0]


def _write_initial(conn, *, series_id, meta, ts, values, sha, diff, ingest_run_id) -> UpsertResult:
    version_id = _insert_version(
        conn, series_id=series_id, version_no=1, parent_id=None, diff=diff, ts=ts, sha=sha, meta=meta,
        ingest_run_id=ingest_run_id,
    )
    written = _copy_rows(conn, series_id=series_id, ts=ts, values=values, valid_from=1, ingest_run_id=ingest_run_id)
    return UpsertResult(Outcome.INITIAL, series_id, version_id, 1, len(ts), n_added=len(ts), n_written=written)


def _write_extension(conn, *, series_id, current, ts, values, sha, diff, ingest_run_id) -> UpsertResult:
    added = diff.added_new
    written = _copy_rows(
        conn,
        series_id=series_id,
        ts=ts[added],
        values=values[added],
        valid_from=current.version_no,
        ingest_run_id=ingest_run_id,
    )
    conn.execute(
        "UPDATE series_versions SET row_count = row_count + %s, n_extended = n_extended + %s, last_ts = %s, "
        "download_sha256 = %s WHERE version_id = %s",
        (written, written, _stamp(ts, -1), sha, current.version_id),
    )
    return UpsertResult(
        Outcome.EXTENDED,
        series_id,
        current.version_id,
        current.version_no,
        current.row_count + written,
        n_added=written,
        n_written=written,
    )


def _write_revision(conn, *, series_id, meta, current, old_ts, ts, values, sha, diff, ingest_run_id) -> UpsertResult:
    new_no = current.version_no + 1
    conn.execute(
        "UPDATE series_versions SET is_current = false, superseded_at = now() WHERE version_id = %s",
        (current.version_id,),
    )
    version_id = _insert_version(
        conn, series_id=series_id, version_no=new_no, parent_id=current.version_id, diff=diff, ts=ts, sha=sha,
        meta=meta, ingest_run_id=ingest_run_id,
    )
    closing = np.concatenate([old_ts[diff.changed_old], old_ts[diff.removed_old]]).astype("datetime64[us]")
    if len(closing):
        conn.execute(
            "UPDATE observations SET valid_to = %s WHERE series_id = %s AND valid_to IS NULL AND ts = ANY(%s)",
            (new_no, series_id, closing.tolist()),
        )
    inserting = np.sort(np.concatenate([diff.changed_new, diff.added_new]))
    written = _copy_rows(
        conn,
        series_id=series_id,
        ts=ts[inserting],
        values=values[inserting],
        valid_from=new_no,
        ingest_run_id=ingest_run_id,
    )
    return UpsertResult(
        Outcome.REVISED,
        series_id,
        version_id,
        new_no,
        len(ts),
        n_added=diff.n_added,
        n_changed=diff.n_changed,
        n_removed=diff.n_removed,
        n_written=written,
    )


def series_upsert(
    conn: psycopg.Connection,
    *,
    meta: SeriesMeta,
    frame: pd.DataFrame,
    ingest_run_id: int | None = None,
    rtol: float = DEFAULT_RTOL,
) -> UpsertResult:
    """Store a validated download of one series, creating a new version only when history changed.

    Runs in its own transaction (a savepoint when the caller already holds one) under a per-series
    advisory lock: either everything below is written or nothing is.
    """
    arrays = storable_arrays(frame, meta.name)
    ts, values, sha = arrays.ts, arrays.values, arrays.sha
    with conn.transaction():
        series_id = series_ensure(conn, meta)
        _lock_series(conn, series_id)
        current = _current_version(conn, series_id)
        if current is not None and current.download_sha256 == sha:
            return UpsertResult(Outcome.UNCHANGED, series_id, current.version_id, current.version_no, current.row_count)
        old_ts, old_values = _current_rows(conn, series_id) if current else (np.empty(0, "int64"), np.empty(0))
        diff = diff_versions(old_ts, old_values, ts, values, rtol=rtol)
        common = {
            "series_id": series_id,
            "ts": ts,
            "values": values,
            "sha": sha,
            "diff": diff,
            "ingest_run_id": ingest_run_id,
        }
        if diff.outcome is Outcome.INITIAL:
            return _write_initial(conn, meta=meta, **common)
        if diff.outcome is Outcome.EXTENDED:
            return _write_extension(conn, current=current, **common)
        if diff.outcome is Outcome.UNCHANGED:
            # equal within tolerance: remember this download so the next identical one takes the fast path
            conn.execute(
                "UPDATE series_versions SET download_sha256 = %s WHERE version_id = %s",
                (sha, current.version_id),
            )
            return UpsertResult(Outcome.UNCHANGED, series_id, current.version_id, current.version_no, current.row_count)
        return _write_revision(conn, meta=meta, current=current, old_ts=old_ts, **common)
