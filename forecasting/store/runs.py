"""Lineage of ingest runs: one row per run, one row per series outcome, and quarantined batches."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg

from forecasting.outcomes import outcome
from forecasting.store.jsonsafe import json_dumps
from forecasting.store.owners import current_owner

__all__ = [
    "airflow_dag_run_upsert",
    "ingest_changed_series",
    "ingest_failures",
    "SeriesRecord",
    "ingest_results_insert",
    "ingest_run_finish",
    "ingest_run_start",
    "quarantine_insert",
]


@dataclass(frozen=True)
class SeriesRecord:
    """The outcome of one series in one ingest run, as stored in ``ingest_results``."""

    source: str
    series_name: str
    outcome: str
    series_id: int | None = None
    version_id: int | None = None
    n_rows: int | None = None
    n_added: int = 0
    n_changed: int = 0
    n_removed: int = 0
    error: str | None = None
    retryable: bool | None = None
    duration_ms: int | None = None
    rate_limited: bool = False  # the source answered HTTP 429 (not stored: it steers Airflow's retry delay)
    version_no: int | None = None  # the series' current version after this ingest (not stored: version_id is)


def ingest_run_start(
    conn: psycopg.Connection, *, config_name: str | None, config_path: str | None, triggered_by: str = "cli"
) -> int:
    host, pid = current_owner()
    with conn.transaction():
        return conn.execute(
            "INSERT INTO ingest_runs (config_name, config_path, triggered_by, owner_host, owner_pid) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING ingest_run_id",
            (config_name, config_path, triggered_by, host, pid),
        ).fetchone()[0]


def ingest_run_finish(conn: psycopg.Connection, *, ingest_run_id: int, n_series: int, n_failed: int) -> str:
    """Record the run's outcome: succeeded, partial (some series failed) or failed (all did); returns it."""
    status = outcome(n_total=n_series, n_failed=n_failed)
    with conn.transaction():
        conn.execute(
            "UPDATE ingest_runs SET status = %s, n_series = %s, n_failed = %s, finished_at = now() "
            "WHERE ingest_run_id = %s",
            (status, n_series, n_failed, ingest_run_id),
        )
    return status


def ingest_results_insert(conn: psycopg.Connection, *, ingest_run_id: int, records: Sequence[SeriesRecord]) -> None:
    """Record per-series outcomes in one statement; re-recording a series in the same run replaces it."""
    if not records:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest_results (ingest_run_id, source, series_name, series_id, outcome, version_id, "
            "n_rows, n_added, n_changed, n_removed, error, retryable, duration_ms) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (ingest_run_id, source, series_name) DO UPDATE SET series_id = EXCLUDED.series_id, "
            "outcome = EXCLUDED.outcome, version_id = EXCLUDED.version_id, n_rows = EXCLUDED.n_rows, "
            "n_added = EXCLUDED.n_added, n_changed = EXCLUDED.n_changed, n_removed = EXCLUDED.n_removed, "
            "error = EXCLUDED.error, retryable = EXCLUDED.retryable, duration_ms = EXCLUDED.duration_ms",
            [
                (
                    ingest_run_id,
                    r.source,
                    r.series_name,
                    r.series_id,
                    r.outcome,
                    r.version_id,
                    r.n_rows,
                    r.n_added,
                    r.n_changed,
                    r.n_removed,
                    r.error,
                    r.retryable,
                    r.duration_ms,
                )
                for r in records
            ],
        )


def _json_cell(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isinf(value):  # JSON has no infinity; keep the evidence as text
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_cell(value.item())
    if isinstance(value, float | int | str | bool):
        return value
    return str(value)


def _batch_json(frame: pd.DataFrame) -> str:
    records = [
        {col: _json_cell(val) for col, val in zip(frame.columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]
    return json.dumps(records)


def quarantine_insert(
    conn: psycopg.Connection,
    *,
    source: str,
    series_name: str,
    series_id: int | None,
    ingest_run_id: int | None,
    reason: str,
    failed_expectations: list[dict],
    validation_result: dict | None,
    batch: pd.DataFrame,
) -> int:
    """Keep a rejected batch with the reasons; stored series data is not touched."""
    with conn.transaction():
        return conn.execute(
            "INSERT INTO quarantine (series_id, source, series_name, ingest_run_id, reason, failed_expectations, "
            "validation_result, row_count, batch) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING quarantine_id",
            (
                series_id,
                source,
                series_name,
                ingest_run_id,
                reason,
                json_dumps(failed_expectations, as_text=True),
                json_dumps(validation_result, as_text=True) if validation_result is not None else None,
                len(batch),
                _batch_json(batch),
            ),
        ).fetchone()[0]


def airflow_dag_run_upsert(conn: psycopg.Connection, *, dag_id: str, run_id: str, run_type: str | None, state: str,
                           started_at, finished_at, n_tasks: int, n_success: int, n_failed: int,
                           message: str | None) -> None:
    """Record an Airflow DAG run as the plugin's listener sees it (the newest state wins)."""
    conn.execute(
        "INSERT INTO airflow_dag_runs (dag_id, run_id, run_type, state, started_at, finished_at, n_tasks, "
        "n_success, n_failed, message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (dag_id, run_id) DO UPDATE SET state = EXCLUDED.state, finished_at = EXCLUDED.finished_at, "
        "n_tasks = EXCLUDED.n_tasks, n_success = EXCLUDED.n_success, n_failed = EXCLUDED.n_failed, "
        "message = EXCLUDED.message, recorded_at = now()",
        (dag_id, run_id, run_type, state, started_at, finished_at, n_tasks, n_success, n_failed, message),
    )


def ingest_failures(conn: psycopg.Connection, *, keys: Sequence[tuple[str, str]],
                    ingest_run_id: int | None = None) -> dict[tuple[str, str], tuple[int, str, str | None]]:
    """(source, name) -> (ingest run id, outcome, error) of the series whose download failed or was quarantined:
    in ingest run ``ingest_run_id``, or (None) in the newest ingest that reached each series."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (r.source, r.series_name) r.source, r.series_name, r.ingest_run_id, r.outcome, r.error "
        "FROM ingest_results r JOIN unnest(%s::text[], %s::text[]) AS k(source, name) "
        "ON k.source = r.source AND k.name = r.series_name WHERE (%s::bigint IS NULL OR r.ingest_run_id = %s) "
        "ORDER BY r.source, r.series_name, r.ingest_run_id DESC",
        ([k[0] for k in keys], [k[1] for k in keys], ingest_run_id, ingest_run_id),
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows if r[3] in ("failed", "quarantined")}


def ingest_changed_series(conn: psycopg.Connection, *, triggered_by: str) -> list[str]:
    """Series that any ingest run with this trigger label (every try of an Airflow DAG run's shard tasks)
    stored as new, extended or revised."""
    rows = conn.execute(
        "SELECT DISTINCT r.series_name FROM ingest_results r JOIN ingest_runs i USING (ingest_run_id) "
        "WHERE i.triggered_by = %s AND r.outcome IN ('initial', 'extended', 'revised') ORDER BY 1",
        (triggered_by,),
    ).fetchall()
    return [r[0] for r in rows]
