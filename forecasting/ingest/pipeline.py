"""Ingest: download, validate and store each configured series, one series failing never stopping the rest.

Series go through in batches (``ingest.batch_size``): each batch is downloaded, then validated in one Great
Expectations run and stored in a few transactions. A download identical to the stored version skips both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import psycopg

from forecasting.config import PipelineConfig, SeriesConfig
from forecasting.db import Database, apply_migrations
from forecasting.errors import ConfigError, RateLimitError, SourceError
from forecasting.frequency import FREQUENCY_HINT
from forecasting.ingest.series_groups import GroupFailure, expand_groups, values_from_source
from forecasting.ingest.shard_validation import ValidationItem, validate_shard
from forecasting.ingest.validation import FrameValidator, ValidationOutcome, check_expectation_specs
from forecasting.sources import get_source
from forecasting.sources.base import (
    TS,
    VALUE,
    FetchResult,
    FrequencyChange,
    SeriesSource,
    SourceParams,
    ValueBounds,
    frequency_change,
)
from forecasting.store.batch_writer import UpsertItem, series_upsert_many
from forecasting.store.owners import reap_abandoned_runs
from forecasting.store.runs import (
    SeriesRecord,
    ingest_results_insert,
    ingest_run_finish,
    ingest_run_start,
    quarantine_insert,
)
from forecasting.store.states import SeriesState, canonical_arrays, fingerprints_record, series_states
from forecasting.store.writers import CanonicalArrays, SeriesMeta, UpsertResult, series_ensure

__all__ = ["IngestReport", "ingest", "ingest_batch"]

_log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    ingest_run_id: int
    records: list[SeriesRecord] = field(default_factory=list)
    version_numbers: dict[str, int] = field(default_factory=dict)

    status: str = "running"  # succeeded, partial or failed once the run is recorded (forecasting.outcomes)

    @property
    def failed(self) -> list[SeriesRecord]:
        return [r for r in self.records if r.outcome in ("failed", "quarantined")]


def _fetch(
    source: SeriesSource,
    params: SourceParams,
    spec: SeriesConfig,
    *,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> FetchResult:
    """Download with exponential backoff on retryable errors; permanent ones propagate at once."""
    attempt = 0
    while True:
        try:
            return source.fetch(params, series=spec.name)
        except SourceError as exc:
            if not exc.retryable or attempt >= retries:
                raise
            delay = backoff * 2**attempt
            attempt += 1
            _log.warning("series %r: %s; retry %d/%d in %.1fs", spec.name, exc, attempt, retries, delay)
            sleep(delay)


def _apply_missing_policy(frame: pd.DataFrame, spec: SeriesConfig) -> pd.DataFrame:
    if spec.missing_values != "drop":
        return frame
    # only true gaps are dropped; text in the value column must still fail validation
    missing = frame[VALUE].isna()
    if missing.any():
        _log.info(
            "series %r: dropped %d row(s) with missing values (missing_values: drop)",
            spec.name,
            missing.sum(),
        )
        frame = frame.loc[~missing].reset_index(drop=True)
    return frame


def _meta(spec: SeriesConfig, params: SourceParams, fetched: FetchResult | None, config_name: str) -> SeriesMeta:
    return SeriesMeta(
        source=spec.source,
        name=spec.name,
        params=params.model_dump(mode="json"),
        frequency=spec.effective_frequency(fetched.frequency if fetched else None),
        unit=spec.unit or (fetched.unit if fetched else None),
        config_name=config_name,
    )


@dataclass
class _Download:
    """A fetched series waiting for validation and storage."""

    spec: SeriesConfig
    meta: SeriesMeta
    frame: pd.DataFrame
    bounds: ValueBounds
    arrays: CanonicalArrays | None  # as the store keeps it; None for a download it would refuse as it is
    fetch_ms: int

    @property
    def sha(self) -> str | None:
        return self.arrays.sha if self.arrays is not None else None


def _unchanged(spec: SeriesConfig, state: SeriesState, duration_ms: int) -> SeriesRecord:
    return SeriesRecord(spec.source, spec.name, "unchanged", series_id=state.series_id, version_id=state.version_id,
                        version_no=state.version_no, n_rows=state.row_count, duration_ms=duration_ms)


def _download(state: SeriesState | None, spec: SeriesConfig, *, config: PipelineConfig,
              sleep: Callable[[float], None]) -> _Download | SeriesRecord:
    """Fetch one series; its failed record when it cannot be, or its unchanged record when the download is
    byte for byte the last accepted version (nothing to validate or write)."""
    started = time.perf_counter()
    source = get_source(spec.source)
    params = spec.source_params()
    base = SeriesRecord(source=spec.source, series_name=spec.name, outcome="failed")
    other = state.conflicting_owner(config.name, params) if state is not None else None
    if other is not None:  # checked before downloading: storing it would overwrite the other config's series
        message = (f"series {spec.name!r} ({spec.source}) is already stored by config {other!r} with "
                   f"other parameters; series are identified by (source, name) across configs: rename it in "
                   f"config {config.name!r} or give it the same parameters as in {other!r}")
        _log.error("%s", message)
        return replace(base, error=message, retryable=False, duration_ms=_ms_since(started))
    try:
        fetched = _fetch(source, params, spec, retries=config.ingest.retries,
                         backoff=config.ingest.retry_backoff_seconds, sleep=sleep)
    except SourceError as exc:
        _log.error("series %r: download failed: %s", spec.name, exc)
        return replace(base, error=str(exc), retryable=exc.retryable, rate_limited=isinstance(exc, RateLimitError),
                       duration_ms=_ms_since(started))
    frame = _apply_missing_policy(fetched.frame, spec)
    meta = _meta(spec, params, fetched, config.name)
    arrays = canonical_arrays(frame, spec.name)
    if state is not None and arrays is not None and state.unchanged(meta, arrays.sha):
        return _unchanged(spec, state, _ms_since(started))
    changed = frequency_change(frame[TS]) if spec.frequency is None and TS in frame.columns else None
    if changed is not None:
        message = _frequency_change_message(spec, params, changed)
        _log.error("%s", message)
        return replace(base, error=message, retryable=False, duration_ms=_ms_since(started))
    return _Download(spec, meta, frame, source.bounds(params), arrays, _ms_since(started))


def _frequency_change_message(spec: SeriesConfig, params: SourceParams, changed: FrequencyChange) -> str:
    """Refused rather than stored: the frequency inferred for the whole would be the first part's, and the rest
    gaps (daily, then monthly until 2029, was stored as daily: modeling filled the months day by day)."""
    def shown(ts: pd.Timestamp) -> str:
        return str(ts.date()) if ts == ts.normalize() else ts.isoformat()

    field = getattr(params, "timestamp_column", TS)  # the column as the source names it (a CSV's own header)
    return (f"series {spec.name!r}: field {field!r}: the frequency changes after {shown(changed.last_before)}: "
            f"{changed.before} until then, {changed.after} from {shown(changed.first_after)}; a series has one "
            "frequency: store each part as a series of its own (or, if the points are one grid with gaps, set "
            "'frequency' in the config)")


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _quarantine(conn: psycopg.Connection, download: _Download, checked: ValidationOutcome,
                ingest_run_id: int | None) -> SeriesRecord:
    message = checked.message(download.spec.name)
    with conn.transaction():
        series_id = series_ensure(conn, download.meta, refresh=False)
        quarantine_insert(conn, source=download.spec.source, series_name=download.spec.name, series_id=series_id,
                          ingest_run_id=ingest_run_id, reason=message, failed_expectations=checked.failed,
                          validation_result=checked.summary, batch=download.frame)
    _log.error("quarantined: %s", message)
    return SeriesRecord(download.spec.source, download.spec.name, "quarantined", series_id=series_id, error=message,
                        retryable=False, n_rows=len(download.frame))


def _stored_record(download: _Download, stored: UpsertResult | Exception) -> SeriesRecord:
    if isinstance(stored, Exception):
        return SeriesRecord(download.spec.source, download.spec.name, "failed",
                            error=f"{type(stored).__name__}: {stored}")
    # stored, so canonical: the arrays were taken at download (a frame without them is refused by the store)
    _warn_about_shape(download.spec, download.arrays.ts, download.meta.frequency, stored)
    return SeriesRecord(download.spec.source, download.spec.name, stored.outcome.value, series_id=stored.series_id,
                        version_id=stored.version_id, version_no=stored.version_no, n_rows=stored.n_rows,
                        n_added=stored.n_added, n_changed=stored.n_changed, n_removed=stored.n_removed)


def ingest_batch(
    conn: psycopg.Connection,
    specs: Sequence[SeriesConfig],
    *,
    config: PipelineConfig,
    ingest_run_id: int | None,
    validator: FrameValidator,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[SeriesConfig], None] = lambda spec: None,
) -> list[SeriesRecord]:
    """Fetch, validate and store a batch of series; one outcome record per series, in order.

    Downloads identical to the stored version are recorded ``unchanged`` without validation. The others are
    validated in one Great Expectations run; failures go to quarantine, the rest are stored in a few
    transactions. Source errors and failed validation are outcomes, not exceptions.
    """
    states = series_states(conn, keys=[(s.source, s.name) for s in specs])
    records: dict[str, SeriesRecord] = {}
    downloads: list[_Download] = []
    fingerprints: dict[str, str] = {}
    to_fetch: list[SeriesConfig] = []
    for spec in specs:
        state = states.get((spec.source, spec.name))
        try:
            fingerprint = _fingerprint(spec)
        except Exception as exc:  # a bug in one series must not hide the others
            records[spec.name] = _unexpected(spec, exc)
            progress(spec)
            continue
        if fingerprint is not None:
            fingerprints[spec.name] = fingerprint
            if state is not None and state.confirmed_by(fingerprint, config.name):
                records[spec.name] = _unchanged(spec, state, 0)
                progress(spec)
                continue
        to_fetch.append(spec)
    _prefetch(to_fetch)
    for spec in to_fetch:
        try:
            outcome = _download(states.get((spec.source, spec.name)), spec, config=config, sleep=sleep)
        except Exception as exc:
            fingerprints.pop(spec.name, None)
            outcome = _unexpected(spec, exc)
        if isinstance(outcome, SeriesRecord):
            records[spec.name] = outcome
        else:
            downloads.append(outcome)
        progress(spec)
    if downloads:
        _validate_and_store(conn, downloads, records, config=config, ingest_run_id=ingest_run_id, validator=validator)
    _confirm(conn, fingerprints, records, states, downloads)
    return [records[spec.name] for spec in specs]


def _unexpected(spec: SeriesConfig, exc: Exception) -> SeriesRecord:
    _log.error("series %r: unexpected error", spec.name, exc_info=exc)
    return SeriesRecord(spec.source, spec.name, "failed", error=f"{type(exc).__name__}: {exc}")


def _prefetch(specs: Sequence[SeriesConfig]) -> None:
    """Let each source ready the batch's downloads at once (one pass over many small files). Only a speed-up:
    if it fails, each series is fetched on its own, and any error is then that series' own."""
    by_source: dict[str, list[SourceParams]] = {}
    for spec in specs:
        by_source.setdefault(spec.source, []).append(spec.source_params())
    for name, params in by_source.items():
        try:
            get_source(name).prefetch(params)
        except Exception:
            _log.warning("reading the %s batch at once failed; reading its series one by one", name, exc_info=True)


def _fingerprint(spec: SeriesConfig) -> str | None:
    """The source's raw-answer hash combined with every setting that shapes what is stored from it."""
    raw = get_source(spec.source).fingerprint(spec.source_params())
    if raw is None:
        return None
    settings = json.dumps(spec.model_dump(mode="json", exclude={"name", "role"}), sort_keys=True, default=str)
    return hashlib.sha256(f"{raw}\n{settings}".encode()).hexdigest()


def _confirm(conn: psycopg.Connection, fingerprints: dict[str, str], records: dict[str, SeriesRecord],
             states: dict[tuple[str, str], SeriesState], downloads: list[_Download]) -> None:
    """Remember which answer each stored or unchanged version came from, so the same answer skips parsing."""
    downloaded = {d.spec.name: d.sha for d in downloads}
    rows = []
    for name, fingerprint in fingerprints.items():
        record = records[name]
        if record.outcome not in ("initial", "extended", "revised", "unchanged") or record.version_id is None:
            continue
        # not downloaded here: found unchanged by its content hash, which is the stored one
        sha = downloaded[name] if name in downloaded else states[(record.source, name)].download_sha256
        if sha is not None:
            rows.append((fingerprint, record.version_id, sha))
    fingerprints_record(conn, rows)


def _validate_and_store(conn: psycopg.Connection, downloads: list[_Download], records: dict[str, SeriesRecord], *,
                        config: PipelineConfig, ingest_run_id: int | None, validator: FrameValidator) -> None:
    started = time.perf_counter()
    checked = validate_shard(validator, [ValidationItem(d.spec.name, d.frame, d.bounds, d.spec.expectations)
                                         for d in downloads])
    passed = []
    for download, outcome in zip(downloads, checked, strict=True):
        if outcome.success:
            passed.append(download)
        else:
            records[download.spec.name] = _quarantine(conn, download, outcome, ingest_run_id)
    stored = series_upsert_many(conn, [UpsertItem(d.meta, d.frame, config.tolerance(d.spec), d.arrays) for d in passed],
                                ingest_run_id=ingest_run_id)
    for download, result in zip(passed, stored, strict=True):
        records[download.spec.name] = _stored_record(download, result)
    shared_ms = _ms_since(started) / len(downloads)  # the batch's validation and storage, shared out
    for download in downloads:
        records[download.spec.name] = replace(records[download.spec.name],
                                              duration_ms=int(download.fetch_ms + shared_ms))


def _warn_about_shape(spec: SeriesConfig, ts_us: np.ndarray, frequency: str | None, stored: UpsertResult) -> None:
    """Say what a stored download will mean for modeling: no frequency, gaps, or a revision that drops points.
    ``ts_us``: its timestamps as stored (microseconds)."""
    if stored.outcome.value == "revised" and stored.n_removed:
        _log.warning("series %r: the download has %d point(s) and drops %d stored point(s); stored as version %d "
                     "(earlier versions stay readable); if the source truncated its answer, re-ingest once it is "
                     "whole", spec.name, len(ts_us), stored.n_removed, stored.version_no)
    if frequency is None:
        _log.warning("series %r: no frequency can be inferred from its %d timestamp(s) (fewer than 3, or on no "
                     "regular grid); modeling will skip it until 'frequency' is set in the config to %s",
                     spec.name, len(ts_us), FREQUENCY_HINT)
        return
    if stored.outcome.value in ("initial", "revised") and len(ts_us) > 1:
        first, last = pd.Timestamp(int(ts_us[0]), unit="us"), pd.Timestamp(int(ts_us[-1]), unit="us")
        expected = _points_between(first, last, frequency)
        if expected > len(ts_us):
            _log.info("series %r: %s, with %d missing timestamp(s) between %s and %s (preprocessing."
                      "missing_timestamps decides how modeling treats them)", spec.name, frequency,
                      expected - len(ts_us), first, last)


def _points_between(first: pd.Timestamp, last: pd.Timestamp, frequency: str) -> int:
    """Timestamps of ``frequency`` from ``first`` to ``last``: by arithmetic for fixed steps (days and shorter),
    the calendar otherwise."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    if isinstance(offset, pd.offsets.Tick):
        return (last - first) // pd.Timedelta(offset) + 1
    return len(pd.date_range(first, last, freq=offset))


def _check_expectations(specs: Iterable[SeriesConfig]) -> None:
    problems = []
    for spec in specs:
        problems += [f"series {spec.name!r}: {p}" for p in check_expectation_specs(spec.expectations)]
    if problems:
        raise ConfigError("invalid expectations:\n  - " + "\n  - ".join(problems))


def ingest(
    database: Database,
    config: PipelineConfig,
    *,
    series: list[str] | None = None,
    config_path: str | None = None,
    triggered_by: str = "cli",
    progress: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestReport:
    """Run one ingest over the selected series; every series gets an outcome, none stops the others.

    A block with a series-id column (``series_column``) is one series per id in its file; a file that cannot be
    read is that block's failed outcome."""
    unlisted: list[GroupFailure] = []
    config = expand_groups(config, values_from_source, on_failure=unlisted.append)
    selected = config.select([n for n in series if n not in {f.spec.name for f in unlisted}] if series else series)
    _check_expectations(selected)
    validator = FrameValidator()
    with database.connect() as conn:
        apply_migrations(conn)
        reap_abandoned_runs(conn)
        report = IngestReport(
            ingest_run_id=ingest_run_start(
                conn, config_name=config.name, config_path=config_path, triggered_by=triggered_by
            )
        )
        for failure in unlisted:
            _log.error("%s", failure)
            record = SeriesRecord(failure.spec.source, failure.spec.name, "failed", error=str(failure.error),
                                  retryable=failure.error.retryable)
            ingest_results_insert(conn, ingest_run_id=report.ingest_run_id, records=[record])
            report.records.append(record)
        with _progress(len(selected), enabled=progress) as advance:
            for start in range(0, len(selected), config.ingest.batch_size):
                records = ingest_batch(conn, selected[start:start + config.ingest.batch_size], config=config,
                                       ingest_run_id=report.ingest_run_id, validator=validator, sleep=sleep,
                                       progress=advance)
                ingest_results_insert(conn, ingest_run_id=report.ingest_run_id, records=records)
                report.records.extend(records)
                report.version_numbers.update({r.series_name: r.version_no for r in records if r.version_no})
        report.status = ingest_run_finish(
            conn, ingest_run_id=report.ingest_run_id, n_series=len(selected) + len(unlisted),
            n_failed=len(report.failed)
        )
    return report


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[SeriesConfig], None]]:
    """A callback that advances a progress bar by one downloaded series (nothing when disabled)."""
    if not enabled:
        yield lambda spec: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc="ingest", unit="series") as bar:
        def advance(spec: SeriesConfig) -> None:
            bar.set_postfix_str(spec.name)
            bar.update()

        yield advance
