"""Encode observation rows in PostgreSQL's binary COPY format with one vectorised NumPy step.

Text COPY formats and parses every timestamp and float one by one (on both sides of the socket); the
binary format is a fixed-width record per row, so a whole series is one ``ndarray.tobytes()``. Values
travel as IEEE doubles, so what is read back is bit-for-bit what was written.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COPY_HEADER", "COPY_TRAILER", "observation_records"]

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)

_PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us").astype("int64")

# (series_id int8, ts timestamp, value float8, valid_from int4, ingest_run_id int8 or NULL)
_FIELDS = [
    ("n_fields", ">i2"),
    ("series_id_len", ">i4"),
    ("series_id", ">i8"),
    ("ts_len", ">i4"),
    ("ts", ">i8"),
    ("value_len", ">i4"),
    ("value", ">f8"),
    ("valid_from_len", ">i4"),
    ("valid_from", ">i4"),
    ("run_len", ">i4"),
]
_WITH_RUN = np.dtype(_FIELDS + [("run", ">i8")])
_WITHOUT_RUN = np.dtype(_FIELDS)


def observation_records(
    *, series_id: int, ts_us: np.ndarray, values: np.ndarray, valid_from: int, ingest_run_id: int | None
) -> bytes:
    """Row records (no header or trailer) for ``COPY observations (series_id, ts, value, valid_from,
    ingest_run_id) FROM STDIN (FORMAT BINARY)``; ``ts_us`` are microseconds since the Unix epoch."""
    records = np.empty(len(ts_us), dtype=_WITHOUT_RUN if ingest_run_id is None else _WITH_RUN)
    records["n_fields"] = 5
    records["series_id_len"], records["series_id"] = 8, series_id
    records["ts_len"], records["ts"] = 8, ts_us - _PG_EPOCH_US
    records["value_len"], records["value"] = 8, values
    records["valid_from_len"], records["valid_from"] = 4, valid_from
    if ingest_run_id is None:
        records["run_len"] = -1  # NULL
    else:
        records["run_len"], records["run"] = 8, ingest_run_id
    return records.tobytes()
