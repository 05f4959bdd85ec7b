"""Model registry: pickled model versions with checksums, their parameters and the data they saw."""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psycopg

from forecasting.errors import StoreError
from forecasting.store.jsonsafe import json_dumps

__all__ = [
    "DataVersion",
    "fingerprint_lock",
    "library_versions",
    "model_id_ensure",
    "model_version_find",
    "model_version_insert",
    "model_version_lineage",
    "model_version_load",
    "model_version_registered_by",
    "model_version_series",
]

_LIBRARIES = ("forecasting", "numpy", "pandas", "scikit-learn", "lightgbm", "statsmodels", "shap")


@dataclass(frozen=True)
class DataVersion:
    """One series version a model was trained on, and how much of it (versions grow by extension)."""

    series_version_id: int
    role: str
    row_count: int
    last_ts: object


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def model_id_ensure(conn: psycopg.Connection, *, config_name: str, name: str, frequency: str,
                    partition_key: str = "") -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO models (config_name, name, frequency, partition_key) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (config_name, name, frequency, partition_key) DO UPDATE SET name = EXCLUDED.name "
            "RETURNING model_id",
            (config_name, name, frequency, partition_key),
        ).fetchone()
    return row[0]


@contextmanager
def fingerprint_lock(conn: psycopg.Connection, fingerprint: str) -> Iterator[None]:
    """Hold the fingerprint's advisory lock (session level) while a model is looked up, fitted and registered.

    A second run training the same fingerprint waits here for the first one's fit and then finds its version,
    instead of fitting the same model again and throwing it away at the insert. The lock is the one
    ``model_version_insert`` takes per transaction (advisory locks are re-entrant in a session); a worker that
    dies drops its connection and with it the lock.
    """
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (fingerprint,))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (fingerprint,))


def model_version_find(conn: psycopg.Connection, *, model_id: int, fingerprint: str) -> int | None:
    """The newest version of ``model_id`` trained with the same fingerprint (config, data, code), if any."""
    row = conn.execute(
        "SELECT max(model_version_id) FROM model_versions WHERE model_id = %s AND fingerprint = %s",
        (model_id, fingerprint),
    ).fetchone()
    return row[0]


def model_version_insert(
    conn: psycopg.Connection, *, model_id: int, run_id: int, fingerprint: str, model: object, params: dict,
    features: list[str], training_start, training_end, fitted: dict, data: list[DataVersion], code_version: str,
    metrics: dict | None = None, artifact_dir: Path | None = None, reuse_existing: bool = True,
) -> int:
    """Store a fitted model (pickled) and its lineage; returns the model version id.

    Two runs training the same fingerprint at once register it once: the insert waits on a transaction lock
    of the fingerprint and returns the version the other run registered first (unless ``reuse_existing`` is
    False: a forced retraining registers a new version).
    """
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    sha = hashlib.sha256(blob).hexdigest()
    path = None
    if artifact_dir is not None:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        path = artifact_dir / f"{sha}.pkl"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(blob)
            tmp.replace(path)  # atomic: a reader never sees half a file
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (fingerprint,))
        existing = model_version_find(conn, model_id=model_id, fingerprint=fingerprint) if reuse_existing else None
        if existing is not None:
            return existing
        version_id = conn.execute(
            "INSERT INTO model_versions (model_id, run_id, fingerprint, artifact, artifact_path, artifact_sha256, "
            "artifact_bytes, params, features, training_start, training_end, fitted, metrics, library_versions, "
            "code_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING model_version_id",
            (model_id, run_id, fingerprint, None if path else blob, str(path) if path else None, sha, len(blob),
             json_dumps(params), json.dumps(features), training_start, training_end,
             json_dumps(fitted), json_dumps(metrics) if metrics is not None else None,
             json.dumps(library_versions()), code_version),
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO model_version_data (model_version_id, series_version_id, role, row_count, last_ts) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(version_id, d.series_version_id, d.role, d.row_count, d.last_ts) for d in data],
            )
    return version_id


def model_version_registered_by(conn: psycopg.Connection, *, model_version_ids: list[int]) -> dict[int, int]:
    """model version id -> the run that registered it (the one whose training fitted and stored it)."""
    rows = conn.execute("SELECT model_version_id, run_id FROM model_versions WHERE model_version_id = ANY(%s)",
                        ([int(i) for i in model_version_ids],)).fetchall()
    return dict(rows)


def model_version_lineage(conn: psycopg.Connection, *,
                          model_version_ids: list[int]) -> dict[int, tuple[str, list[int], dict]]:
    """model version id -> (its fingerprint, the ids of the target series it was fitted on, the model settings it
    recorded)."""
    rows = conn.execute(
        "SELECT v.model_version_id, v.fingerprint, coalesce(array_agg(sv.series_id ORDER BY sv.series_id) "
        "FILTER (WHERE d.role = 'target'), '{}'), v.params -> 'model' FROM model_versions v "
        "LEFT JOIN model_version_data d ON d.model_version_id = v.model_version_id "
        "LEFT JOIN series_versions sv ON sv.version_id = d.series_version_id "
        "WHERE v.model_version_id = ANY(%s) GROUP BY v.model_version_id, v.fingerprint, v.params",
        ([int(i) for i in model_version_ids],),
    ).fetchall()
    return {r[0]: (r[1], list(r[2]), r[3] or {}) for r in rows}


def model_version_load(conn: psycopg.Connection, model_version_id: int):
    """Unpickle a stored model version after checking its checksum."""
    row = conn.execute(
        "SELECT artifact, artifact_path, artifact_sha256 FROM model_versions WHERE model_version_id = %s",
        (model_version_id,),
    ).fetchone()
    if row is None:
        raise StoreError(f"model version {model_version_id} does not exist")
    blob, path, sha = row
    if blob is None:
        try:
            blob = Path(path).read_bytes()
        except OSError as exc:
            raise StoreError(f"model version {model_version_id}: artifact {path} unreadable: {exc}") from exc
    blob = bytes(blob)
    if hashlib.sha256(blob).hexdigest() != sha:
        raise StoreError(f"model version {model_version_id}: artifact checksum mismatch, refusing to load it")
    return pickle.loads(blob)  # noqa: S301 - our own artifact, integrity checked above


def model_version_series(conn: psycopg.Connection, model_version_id: int) -> dict[int, int]:
    """series id -> the series version a model version was trained on (targets only)."""
    rows = conn.execute(
        "SELECT v.series_id, d.series_version_id FROM model_version_data d "
        "JOIN series_versions v ON v.version_id = d.series_version_id "
        "WHERE d.model_version_id = %s AND d.role = 'target'",
        (model_version_id,),
    ).fetchall()
    return dict(rows)
