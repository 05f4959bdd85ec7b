"""The series of a pipeline run whose data is missing or stale, recorded when the run is planned: a target never
stored (left out of the run) or a series whose download failed in the run's own ingest (modelled on its stored
version). Any of them makes the run partial (see ``forecasting.steps.plan.finish_run``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg

__all__ = ["DataIssue", "data_issues_write", "run_data_issues"]


@dataclass(frozen=True)
class DataIssue:
    """A series of a run whose data is missing (never stored: a target is then left out, ``modelled`` False) or
    stale (its download failed in the run's own ingest: modelled on its stored version), and why."""

    source: str
    name: str
    role: str
    series_id: int | None
    modelled: bool
    reason: str


def data_issues_write(conn: psycopg.Connection, *, run_id: int, issues: Sequence[DataIssue]) -> None:
    """Replace the run's data issues (planning records them; a re-plan records them again)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM run_data_issues WHERE run_id = %s", (run_id,))
        cur.executemany(
            "INSERT INTO run_data_issues (run_id, source, series_name, role, series_id, modelled, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(run_id, i.source, i.name, i.role, i.series_id, i.modelled, i.reason) for i in issues],
        )


def run_data_issues(conn: psycopg.Connection, *, run_id: int) -> pd.DataFrame:
    """The run's series with missing or stale data: series, source, role, series_id, modelled, reason."""
    cur = conn.execute("SELECT series_name AS series, source, role, series_id, modelled, reason FROM run_data_issues "
                       "WHERE run_id = %s ORDER BY role DESC, series_name, source", (run_id,))
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
