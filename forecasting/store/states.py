"""What the store knows of a batch of series before ingest writes them: identity, owner, current version."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg

from forecasting.errors import StoreError
from forecasting.sources.base import SourceParams
from forecasting.store.writers import CanonicalArrays, SeriesMeta, params_json, storable_arrays

__all__ = ["SeriesState", "canonical_arrays", "fingerprints_record", "series_states"]


@dataclass(frozen=True)
class SeriesState:
    series_id: int
    config_name: str | None
    params: dict
    frequency: str | None
    unit: str | None
    version_id: int | None
    version_no: int | None
    row_count: int | None
    download_sha256: str | None
    source_fingerprint: str | None

    def confirmed_by(self, fingerprint: str, config_name: str) -> bool:
        """Whether the current version was last stored or confirmed, for this config, from an answer with this
        fingerprint: then the answer is unchanged without being parsed."""
        return self.version_id is not None and self.source_fingerprint == fingerprint and \
            self.config_name == config_name

    def conflicting_owner(self, config_name: str, params: SourceParams) -> str | None:
        """The other config that stores this (source, name) with other parameters, if any: series are identified
        by (source, name) across configs, so two configs must agree on what a series is."""
        if self.config_name in (None, config_name) or self.params == _json(params.model_dump(mode="json")):
            return None
        return self.config_name

    def unchanged(self, meta: SeriesMeta, sha: str | None) -> bool:
        """Whether storing a download with content hash ``sha`` under ``meta`` would change nothing: the same
        description, owner and content as the current version. A download that is not canonical (``sha`` None:
        text, NaN, unsorted) is never unchanged: validation must see it."""
        if sha is None or self.download_sha256 is None or self.config_name != meta.config_name:
            return False
        if (self.params, self.frequency, self.unit) != (_json(meta.params), meta.frequency, meta.unit):
            return False
        return sha == self.download_sha256


def canonical_arrays(frame: pd.DataFrame, name: str) -> CanonicalArrays | None:
    """The arrays and content hash the store keeps for ``frame``, or None for a frame it would refuse (not
    canonical, or empty). Taken once per download: the unchanged test, the fingerprint and the write share it."""
    try:
        return storable_arrays(frame, name)
    except StoreError:
        return None


def _json(params: dict) -> dict:
    return json.loads(params_json(params))  # as the jsonb column gives it back


def series_states(conn: psycopg.Connection, *, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], SeriesState]:
    """The stored state of each (source, name) that is stored, in one query."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT s.source, s.name, s.series_id, s.config_name, s.params, s.frequency, s.unit, v.version_id, "
        "v.version_no, v.row_count, v.download_sha256, v.source_fingerprint "
        "FROM series s JOIN unnest(%s::text[], %s::text[]) AS k(source, name) "
        "ON s.source = k.source AND s.name = k.name "
        "LEFT JOIN series_versions v ON v.series_id = s.series_id AND v.is_current",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return {(row[0], row[1]): SeriesState(*row[2:]) for row in rows}


def fingerprints_record(conn: psycopg.Connection, rows: Sequence[tuple[str, int, str]]) -> None:
    """Record (fingerprint, version id, content hash): the version was stored or confirmed from that answer.

    Only while the version still holds that content: a concurrent writer may have extended it meanwhile, and a
    fingerprint must never vouch for rows it did not produce."""
    if rows:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("UPDATE series_versions SET source_fingerprint = %s "
                            "WHERE version_id = %s AND download_sha256 = %s", rows)
