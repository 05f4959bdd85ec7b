"""Reads from the store: a series at its current version, at any past version, or as known at an instant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import psycopg

from forecasting.errors import StoreError
from forecasting.sources.base import TS, VALUE

__all__ = [
    "StoredSeries",
    "panel_first_known",
    "panel_read",
    "series_id_lookup",
    "series_list",
    "series_read",
    "series_versions_list",
    "series_names",
    "series_params_of_config",
    "stored_series",
    "stored_series_by_id",
]


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
        try:
            instant = pd.Timestamp(as_of)
            if pd.isna(instant):  # 'nan' and '' read as NaT, which compares as no instant: the current data
                raise ValueError("no instant")
            instant = instant.tz_localize("UTC") if instant.tzinfo is None else instant
            at = instant.to_pydatetime()  # '-1' reads as a year before 1, which Python's datetime cannot hold
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"series {name!r}: as_of {as_of!r} is not a timestamp (e.g. 2026-11-01T00:00:00Z): "
                             f"{exc}") from None
        known = conn.execute(
            "SELECT min(created_at) FROM series_versions WHERE series_id = %s", (series_id,)
        ).fetchone()[0]
        if known is None or instant < known:
            raise StoreError(f"series {name!r} had no stored version at {instant.isoformat()}")
        rows = conn.execute(
            "SELECT ts, value FROM series_observations_as_of(%s, %s)", (series_id, at)
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


@dataclass(frozen=True)
class StoredSeries:
    """Identity and current version of a stored series, as a model run sees it."""

    name: str
    source: str
    series_id: int
    version_id: int
    row_count: int
    last_ts: datetime
    frequency: str | None


# the version a run pinned at planning (pipeline_run_data), with its row count and last timestamp then: a current
# version keeps growing by extension, so its own row_count and last_ts would move under the run
_PINNED = ("SELECT s.name, s.source, s.series_id, d.series_version_id, d.row_count, d.last_ts, s.frequency "
           "FROM pipeline_run_data d JOIN series_versions v ON v.version_id = d.series_version_id "
           "JOIN series s ON s.series_id = v.series_id ")


def _check_snapshot(conn: psycopg.Connection, run_id: int) -> None:
    row = conn.execute("SELECT data_as_of FROM pipeline_runs WHERE run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise StoreError(f"pipeline run {run_id} does not exist")
    if row[0] is None:
        raise StoreError(f"pipeline run {run_id} was planned before runs pinned the data they read: plan a new run")


def stored_series(conn: psycopg.Connection, *, keys: list[tuple[str, str]],
                  run_id: int | None = None) -> dict[str, StoredSeries]:
    """Current version details for (source, name) pairs; series never stored are absent. With ``run_id``: the
    versions that run pinned when it was planned (series it did not pin are absent)."""
    if not keys:
        return {}
    sources, names = [k[0] for k in keys], [k[1] for k in keys]
    if run_id is not None:
        _check_snapshot(conn, run_id)
        rows = conn.execute(
            _PINNED + "JOIN unnest(%s::text[], %s::text[]) AS k(source, name) ON k.source = s.source "
            "AND k.name = s.name WHERE d.run_id = %s", (sources, names, run_id)).fetchall()
        return {r[0]: StoredSeries(*r) for r in rows}
    rows = conn.execute(
        "SELECT s.name, s.source, s.series_id, v.version_id, v.row_count, v.last_ts, s.frequency "
        "FROM series s JOIN series_versions v ON v.series_id = s.series_id AND v.is_current "
        "JOIN unnest(%s::text[], %s::text[]) AS k(source, name) ON k.source = s.source AND k.name = s.name",
        (sources, names),
    ).fetchall()
    return {r[0]: StoredSeries(*r) for r in rows}


def series_params_of_config(conn: psycopg.Connection, *, config_name: str, source: str) -> list[tuple[str, dict]]:
    """(name, params) of every series of ``source`` that config ``config_name`` stores."""
    return conn.execute("SELECT name, params FROM series WHERE config_name = %s AND source = %s ORDER BY name",
                        (config_name, source)).fetchall()


def series_list(conn: psycopg.Connection) -> pd.DataFrame:
    """Every stored series: name, source, frequency, current version, versions, rows, first and last ts."""
    cur = conn.execute(
        "SELECT s.name AS series, s.source, s.frequency AS freq, v.version_no AS version, "
        "(SELECT count(*) FROM series_versions a WHERE a.series_id = s.series_id) AS versions, v.row_count AS rows, "
        "v.first_ts::date AS first, v.last_ts AS last FROM series s "
        "LEFT JOIN series_versions v ON v.series_id = s.series_id AND v.is_current ORDER BY s.name, s.source"
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def stored_series_by_id(conn: psycopg.Connection, *, series_ids: Sequence[int],
                        run_id: int | None = None) -> dict[int, StoredSeries]:
    """Current version details of the given series ids; ids without a current version are absent. With
    ``run_id``: the versions that run pinned when it was planned."""
    if run_id is not None:
        _check_snapshot(conn, run_id)
        rows = conn.execute(_PINNED + "WHERE d.run_id = %s AND s.series_id = ANY(%s)",
                            (run_id, [int(i) for i in series_ids])).fetchall()
        return {r[2]: StoredSeries(*r) for r in rows}
    rows = conn.execute(
        "SELECT s.name, s.source, s.series_id, v.version_id, v.row_count, v.last_ts, s.frequency "
        "FROM series s JOIN series_versions v ON v.series_id = s.series_id AND v.is_current "
        "WHERE s.series_id = ANY(%s)",
        ([int(i) for i in series_ids],),
    ).fetchall()
    return {r[2]: StoredSeries(*r) for r in rows}


def series_names(conn: psycopg.Connection, *, series_ids: Sequence[int]) -> dict[int, str]:
    """Names of series ids, for output at the edges (CLI tables, logs)."""
    rows = conn.execute("SELECT series_id, name FROM series WHERE series_id = ANY(%s)",
                        ([int(i) for i in series_ids],)).fetchall()
    return dict(rows)


def panel_read(conn: psycopg.Connection, *, series_ids: Sequence[int],
               keys: Mapping[int, object] | None = None,
               pinned: Mapping[int, StoredSeries] | None = None) -> pd.DataFrame:
    """The current data of the given series as one panel (series, ts, y), sorted; with ``pinned`` (series id ->
    the version a run pinned, ``stored_series_by_id(run_id=...)``), that version up to its pinned last timestamp,
    whatever was ingested since.

    The ``series`` column holds the series id, or ``keys[series_id]`` when given (feature series are keyed by
    name: their names become feature column names).
    """
    ids = [int(i) for i in series_ids]
    if not ids:
        return _panel([], {})
    if pinned is not None:
        missing = [i for i in ids if i not in pinned]
        if missing:
            raise StoreError(f"series id(s) {missing[:5]} are not in the run's pinned data")
        cur = conn.execute(
            "SELECT o.series_id, o.ts, o.value FROM unnest(%s::bigint[], %s::bigint[], %s::timestamp[]) "
            "AS p(series_id, version_id, last_ts) JOIN series_versions v ON v.version_id = p.version_id "
            "JOIN observations o ON o.series_id = p.series_id AND o.valid_from <= v.version_no "
            "AND (o.valid_to IS NULL OR o.valid_to > v.version_no) AND o.ts <= p.last_ts "
            "ORDER BY o.series_id, o.ts",
            (ids, [pinned[i].version_id for i in ids], [pinned[i].last_ts for i in ids]),
        )
        return _panel(cur.fetchall(), keys or {i: i for i in ids})
    cur = conn.execute(
        "SELECT series_id, ts, value FROM observations WHERE series_id = ANY(%s) AND valid_to IS NULL "
        "ORDER BY series_id, ts",
        (ids,),
    )
    return _panel(cur.fetchall(), keys or {i: i for i in ids})


def panel_first_known(conn: psycopg.Connection, *, cutoffs: Mapping[int, datetime],
                      keys: Mapping[int, object] | None = None) -> pd.DataFrame:
    """Each series' data up to its own cut-off as it was first known (``series_observations_first_known`` in
    sql/): ``cutoffs`` maps series id -> cut-off. Per series, because in a ragged panel a series that ends early
    has an earlier cut-off than the others, and the vintage must be the one known at that cut-off. The panel's
    ``series`` column holds ``keys[id]`` (default: the id)."""
    rows = []
    for series_id, cutoff in cutoffs.items():
        found = conn.execute(
            "SELECT ts, value FROM series_observations_first_known(%s, %s)", (int(series_id), cutoff)
        ).fetchall()
        rows += [(int(series_id), ts, value) for ts, value in found]
    return _panel(rows, keys if keys is not None else {int(i): int(i) for i in cutoffs})


def _panel(rows: list[tuple], keys: Mapping[int, object]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["series_id", TS, "y"])
    frame.insert(0, "series", frame.pop("series_id").map(keys))
    if all(isinstance(k, int) for k in keys.values()):
        frame["series"] = frame["series"].astype("int64")
    frame[TS] = pd.to_datetime(frame[TS]).astype("datetime64[ns]")
    frame["y"] = frame["y"].astype("float64")
    return frame.sort_values(["series", TS], kind="stable").reset_index(drop=True)
