"""Reads from the store: a series at its current version, at any past version, or as known at an instant."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import psycopg

from forecasting.errors import StoreError
from forecasting.sources.base import TS, VALUE

__all__ = ["series_id_lookup", "series_read", "series_versions_list"]


def series_id_lookup(conn: psycopg.Connection, *, name: str, source: str | None = None) -> int:
    """The id of series ``name`` (``source`` disambiguates when two sources use the same name)."""
    rows = conn.execute(
        "SELECT series_id, source FROM series WHERE name = %s AND (%s::text IS NULL OR source = %s)",
        (name, source, source),
    ).fetchall()
    if not rows:
        raise StoreError(f"series {name!r} is not stored" + (f" for source {source!r}" if source else ""))
    if len(rows) > 1:
        sources = ", ".join(sorted(r[1] for r in rows))
        raise StoreError(f"series name {name!r} exists for several sources ({sources}); pass source=")
    return rows[0][0]


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[TS, VALUE])
    frame[TS] = pd.to_datetime(frame[TS]).astype("datetime64[ns]")
    frame[VALUE] = frame[VALUE].astype("float64")
    return frame


def series_read(
    conn: psycopg.Connection,
    *,
    name: str,
    source: str | None = None,
    version: int | None = None,
    as_of: datetime | str | None = None,
) -> pd.DataFrame:
    """Observations (``ts``, ``value``) of the current version, of ``version``, or as known at ``as_of``.

    ``as_of`` must be timezone-aware (or a string with an offset); a naive value is taken as UTC.
    """
    if version is not None and as_of is not None:
        raise ValueError("pass either version= or as_of=, not both")
    series_id = series_id_lookup(conn, name=name, source=source)
    if as_of is not None:
        instant = pd.Timestamp(as_of)
        instant = instant.tz_localize("UTC") if instant.tzinfo is None else instant
        known = conn.execute(
            "SELECT min(created_at) FROM series_versions WHERE series_id = %s", (series_id,)
        ).fetchone()[0]
        if known is None or instant < known:
            raise StoreError(f"series {name!r} had no stored version at {instant.isoformat()}")
        rows = conn.execute(
            "SELECT ts, value FROM series_observations_as_of(%s, %s)", (series_id, instant.to_pydatetime())
        ).fetchall()
        return _frame(rows)
    if version is None:
        row = conn.execute(
            "SELECT version_no FROM series_versions WHERE series_id = %s AND is_current", (series_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"series {name!r} has no stored version yet")
        version = row[0]
    else:
        exists = conn.execute(
            "SELECT 1 FROM series_versions WHERE series_id = %s AND version_no = %s", (series_id, version)
        ).fetchone()
        if exists is None:
            raise StoreError(f"series {name!r} has no version {version}")
    rows = conn.execute("SELECT ts, value FROM series_observations_at_version(%s, %s)", (series_id, version)).fetchall()
    return _frame(rows)


def series_versions_list(conn: psycopg.Connection, *, name: str, source: str | None = None) -> pd.DataFrame:
    """Every version of a series with why and when it was made, oldest first."""
    series_id = series_id_lookup(conn, name=name, source=source)
    cur = conn.execute(
        "SELECT version_id, version_no, reason, is_current, row_count, n_changed, n_added, n_removed, "
        "n_extended, first_ts, last_ts, ingest_run_id, created_at, superseded_at "
        "FROM series_versions WHERE series_id = %s ORDER BY version_no",
        (series_id,),
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
