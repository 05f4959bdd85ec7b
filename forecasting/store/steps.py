"""Bookkeeping of partitioned modeling runs: the partitions of a run, the outcome of each step of each
partition, the model versions each partition's training produced, and the series a step had to skip.

Every writer replaces what the same (run, step, partition) wrote before, in one transaction, so a retried
Airflow task or a re-run step leaves one set of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import psycopg

from forecasting.skips import Skip
from forecasting.store.jsonsafe import json_dumps

__all__ = [
    "Skip",
    "latest_trained_models",
    "model_skipped_series",
    "partition_keys",
    "partition_models_write",
    "partition_read",
    "partitions_write",
    "planned_series_ids",
    "run_skips",
    "run_step_finish",
    "run_step_start",
    "run_steps_abandon",
    "series_revised_any",
    "skips_write",
    "skipped_series_ids",
    "step_summaries",
    "step_summary",
]



def partitions_write(conn: psycopg.Connection, *, run_id: int, partitions: Iterable) -> None:
    """Record a run's plan (objects with key, freq, part_no, n_parts, series_ids); a re-plan replaces it."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM run_partitions WHERE run_id = %s", (run_id,))
        cur.executemany(
            "INSERT INTO run_partitions (run_id, partition_key, frequency, part_no, n_parts, series_ids) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(run_id, p.key, p.freq, p.part_no, p.n_parts, list(p.series_ids)) for p in partitions],
        )


def partition_read(conn: psycopg.Connection, *, run_id: int, key: str) -> tuple[str, int, int, list[int]] | None:
    """(frequency, part_no, n_parts, series ids) of one planned partition of a run."""
    row = conn.execute(
        "SELECT frequency, part_no, n_parts, series_ids FROM run_partitions WHERE run_id = %s AND partition_key = %s",
        (run_id, key),
    ).fetchone()
    return (row[0], row[1], row[2], list(row[3])) if row else None


def partition_keys(conn: psycopg.Connection, *, run_id: int) -> list[str]:
    rows = conn.execute("SELECT partition_key FROM run_partitions WHERE run_id = %s ORDER BY frequency, part_no",
                        (run_id,)).fetchall()
    return [r[0] for r in rows]


def planned_series_ids(conn: psycopg.Connection, *, run_id: int) -> list[int]:
    """Every target series a run planned, over all its partitions."""
    rows = conn.execute("SELECT unnest(series_ids) FROM run_partitions WHERE run_id = %s", (run_id,)).fetchall()
    return [r[0] for r in rows]


def run_step_start(conn: psycopg.Connection, *, run_id: int, step: str, partition_key: str = "") -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO run_steps (run_id, step, partition_key, status) VALUES (%s, %s, %s, 'running') "
            "ON CONFLICT (run_id, step, partition_key) DO UPDATE SET status = 'running', started_at = now(), "
            "finished_at = NULL, seconds = NULL, summary = NULL, error = NULL",
            (run_id, step, partition_key),
        )


def run_step_finish(conn: psycopg.Connection, *, run_id: int, step: str, partition_key: str = "", status: str,
                    seconds: float, summary: dict | None = None, error: str | None = None) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE run_steps SET status = %s, finished_at = now(), seconds = %s, summary = %s, error = %s "
            "WHERE run_id = %s AND step = %s AND partition_key = %s",
            (status, seconds, json_dumps(summary) if summary is not None else None, error, run_id, step,
             partition_key),
        )


def run_steps_abandon(conn: psycopg.Connection, *, run_id: int, reason: str) -> int:
    """Mark the run's steps still 'running' as 'abandoned' with ``reason``; returns how many there were."""
    with conn.transaction():
        return conn.execute("UPDATE run_steps SET status = 'abandoned', error = %s, finished_at = now() "
                            "WHERE run_id = %s AND status = 'running'", (reason, run_id)).rowcount


def step_summary(conn: psycopg.Connection, *, run_id: int, step: str, partition_key: str = "") -> dict | None:
    """The summary a successful step of a run recorded for a partition, or None."""
    row = conn.execute("SELECT summary FROM run_steps WHERE run_id = %s AND step = %s AND partition_key = %s "
                       "AND status = 'succeeded'", (run_id, step, partition_key)).fetchone()
    return row[0] if row else None


def step_summaries(conn: psycopg.Connection, *, run_id: int) -> pd.DataFrame:
    """Every step of a run: step, partition_key, status, seconds, summary, error."""
    cur = conn.execute(
        "SELECT step, partition_key, status, seconds, summary, error FROM run_steps WHERE run_id = %s "
        "ORDER BY started_at, step, partition_key",
        (run_id,),
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def skips_write(conn: psycopg.Connection, *, run_id: int, step: str, partition_key: str,
                skips: Sequence[Skip]) -> None:
    """Replace the skips this step of this partition recorded in the run."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM series_skips WHERE run_id = %s AND step = %s AND partition_key = %s",
                    (run_id, step, partition_key))
        cur.executemany(
            "INSERT INTO series_skips (run_id, step, partition_key, series_id, model, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(run_id, step, partition_key, int(s.series_id), s.model, s.reason) for s in skips],
        )


def skipped_series_ids(conn: psycopg.Connection, *, run_id: int, partition_key: str | None,
                       excluding_step: str) -> set[int]:
    """Series the other steps of this run skipped as a whole (model NULL) in this partition (None: in any).

    The asking step's own skips are left out: a retried step records them again, and skips_write replaces
    what that step wrote before."""
    rows = conn.execute(
        "SELECT DISTINCT series_id FROM series_skips WHERE run_id = %s AND model IS NULL AND step <> %s "
        "AND (%s::text IS NULL OR partition_key = %s)",
        (run_id, excluding_step, partition_key, partition_key),
    ).fetchall()
    return {r[0] for r in rows}


def model_skipped_series(conn: psycopg.Connection, *, run_id: int, partition_key: str,
                         step: str) -> dict[str, set[int]]:
    """Per model, the series ``step`` of this run left out of this partition for that model only."""
    rows = conn.execute(
        "SELECT model, series_id FROM series_skips WHERE run_id = %s AND partition_key = %s AND step = %s "
        "AND model IS NOT NULL", (run_id, partition_key, step)).fetchall()
    out: dict[str, set[int]] = {}
    for model, series_id in rows:
        out.setdefault(model, set()).add(int(series_id))
    return out


def run_skips(conn: psycopg.Connection, *, run_id: int) -> pd.DataFrame:
    """Every skip of a run with the series name: series, step, partition_key, model, reason."""
    cur = conn.execute(
        "SELECT s.name AS series, k.step, k.partition_key, k.model, k.reason FROM series_skips k "
        "JOIN series s USING (series_id) WHERE k.run_id = %s ORDER BY s.name, k.step, k.model NULLS FIRST",
        (run_id,),
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def partition_models_write(conn: psycopg.Connection, *, run_id: int, partition_key: str,
                           versions: dict[str, tuple[int, bool]]) -> None:
    """Record model name -> (model version id, reused) for one partition's training in a run."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM partition_models WHERE run_id = %s AND partition_key = %s", (run_id, partition_key))
        cur.executemany(
            "INSERT INTO partition_models (run_id, partition_key, model, model_version_id, reused) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(run_id, partition_key, name, vid, reused) for name, (vid, reused) in versions.items()],
        )


def latest_trained_models(conn: psycopg.Connection, *, config_name: str, partition_key: str,
                          run_id: int | None = None) -> tuple[int | None, dict[str, int]]:
    """(run id, {model: model version id}) of the newest succeeded training of this partition, or (None, {}).

    ``run_id``: that run's own training of the partition comes first, so a run that trains and predicts predicts
    with the models fitted on its own snapshot even when another run trained the partition meanwhile."""
    row = conn.execute(
        "SELECT s.run_id FROM run_steps s JOIN pipeline_runs r USING (run_id) WHERE r.config_name = %s "
        "AND s.step = 'train' AND s.partition_key = %s AND s.status = 'succeeded' "
        "ORDER BY s.run_id = %s DESC, s.finished_at DESC, s.run_id DESC LIMIT 1",
        (config_name, partition_key, run_id),
    ).fetchone()
    if row is None:
        return None, {}
    models = conn.execute("SELECT model, model_version_id FROM partition_models WHERE run_id = %s AND "
                          "partition_key = %s", (row[0], partition_key)).fetchall()
    return row[0], dict(models)


def series_revised_any(conn: psycopg.Connection, *, series_version_ids: Sequence[int]) -> bool:
    """True when any of these versions is a revision (version 2 or later): the series was revised by then. A
    revision stored after these versions does not count: a run reads the versions it pinned."""
    row = conn.execute(
        "SELECT count(*) FROM series_versions WHERE version_id = ANY(%s) AND version_no > 1",
        ([int(v) for v in series_version_ids],),
    ).fetchone()
    return row[0] > 0

