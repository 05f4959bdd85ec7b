"""Many small CSV files of one layout, parsed in one pass.

An ingest batch of one-file-per-series blocks would otherwise pay pandas' fixed cost of a read and of a
timestamp parse for every file (about 1 ms each, most of a first ingest). Files whose header and settings
match are joined into one buffer, each line prefixed with its file's number, and read and parsed once.

Only files that give exactly what a read of their own gives take this path: plain lines (no quotes, blank
lines or lone carriage returns), a numeric value column across the group, ISO 8601 timestamps. Anything else
is left to the per-file read, which also produces the errors; so this is a cache, never a second parser with
its own rules.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.sources.base import naive_utc

__all__ = ["ParsedFile", "prefetch", "take"]

_log = logging.getLogger(__name__)

_FILE_COLUMN = "__forecasting_file__"


@dataclass(frozen=True)
class ParsedFile:
    """One file's parsed columns, valid while the file keeps ``stamp`` (mtime, size)."""

    stamp: tuple[int, int]
    timestamps: np.ndarray  # naive UTC datetime64
    values: np.ndarray


# one ingest batch's parsed files, by their parameters; each is taken once, so memory stays one batch
_parsed: dict[object, ParsedFile] = {}


def take(params: object, stamp: tuple[int, int] | None) -> ParsedFile | None:
    """The prefetched columns of the file ``params`` names, if it was prefetched and has not changed since."""
    parsed = _parsed.pop(params, None)
    return parsed if parsed is not None and parsed.stamp == stamp else None


def prefetch(params_list: Sequence, *, timestamps, stamp_of) -> int:
    """Parse the eligible files of ``params_list`` (CsvParams) in groups of one layout; returns how many were.

    ``timestamps(raw, params)`` parses a timestamp column as a read of one file does; ``stamp_of(path)`` gives a
    local file's (mtime, size), or None."""
    _parsed.clear()
    groups: dict[tuple, list] = defaultdict(list)
    for params in params_list:
        if _eligible(params):
            groups[(params.separator, params.timestamp_column, params.value_column, params.timezone)].append(params)
    done = 0
    for members in groups.values():
        if len(members) > 1:
            done += _prefetch_layout(members, timestamps, stamp_of)
    return done


def _eligible(params) -> bool:
    # URLs have no stamp (stamp_of), so they are left out when read
    return (params.filter_column is None and params.series_column is None and params.date_format is None
            and len(params.separator) == 1)


@dataclass
class _Raw:
    params: object
    stamp: tuple[int, int]
    header: bytes
    body: bytes  # the lines after the header, without the final line break


def _prefetch_layout(members: list, timestamps, stamp_of) -> int:
    by_header: dict[bytes, list[_Raw]] = defaultdict(list)
    for params in members:
        raw = _read_plain(params, stamp_of)
        if raw is not None:
            by_header[raw.header].append(raw)
    done = 0
    for header, raws in by_header.items():
        if len(raws) > 1:
            done += _parse_group(header, raws, timestamps)
    return done


def _read_plain(params, stamp_of) -> _Raw | None:
    """The file's bytes when it is plain enough to be joined with others; None otherwise."""
    stamp = stamp_of(params.path)
    if stamp is None:
        return None
    try:
        content = Path(params.path).read_bytes()
    except OSError:
        return None
    header_end = content.find(b"\n")
    body = content[header_end + 1:].rstrip(b"\r\n")
    if (header_end < 0 or not body or b'"' in content or b"\n\n" in body or b"\n\r\n" in body
            or body.startswith((b"\n", b"\r")) or content.count(b"\r") != content.count(b"\r\n")):
        return None
    return _Raw(params, stamp, content[:header_end], body)


def _parse_group(header: bytes, raws: list[_Raw], timestamps) -> int:
    first = raws[0].params
    sep = first.separator.encode()
    buffer = io.BytesIO()
    buffer.write(_FILE_COLUMN.encode() + sep + header + b"\n")
    for number, raw in enumerate(raws):
        prefix = str(number).encode() + sep
        buffer.write(prefix + raw.body.replace(b"\n", b"\n" + prefix) + b"\n")
    buffer.seek(0)
    try:
        data = pd.read_csv(buffer, sep=first.separator, dtype={first.timestamp_column: str, _FILE_COLUMN: "int64"})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return 0  # one of them is malformed: each file's own read names it
    if not _same_as_alone(data, first):
        return 0
    parsed = timestamps(data[first.timestamp_column], first, iso_only=True)
    if parsed is None:
        return 0
    parsed, values = naive_utc(parsed), data[first.value_column].to_numpy()
    counts = np.bincount(data[_FILE_COLUMN].to_numpy(), minlength=len(raws))
    ends = np.cumsum(counts)
    starts = ends - counts
    for raw, start, end in zip(raws, starts, ends, strict=True):
        _parsed[raw.params] = ParsedFile(raw.stamp, parsed[start:end], values[start:end])
    return len(raws)


def _same_as_alone(data: pd.DataFrame, params) -> bool:
    """Whether each file's rows read as they would alone: no column taken as an index (rows longer than the
    header), the columns wanted present, and values numeric in every file (a text value makes a file's column
    text, which only its own read may decide)."""
    return (isinstance(data.index, pd.RangeIndex) and _FILE_COLUMN in data.columns
            and params.timestamp_column in data.columns and params.value_column in data.columns
            and data[params.value_column].dtype.kind in "fi")
