"""Ingest: download, validate and store each configured series, one series failing never stopping the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import pandas as pd
import psycopg

from forecasting.config import FREQUENCY_HINT, PipelineConfig, SeriesConfig
from forecasting.db import Database, apply_migrations
from forecasting.errors import ConfigError, RateLimitError, SourceError
from forecasting.series_groups import GroupFailure, expand_groups, values_from_source
from forecasting.sources import get_source
from forecasting.sources.base import TS, VALUE, FetchResult, SeriesSource, SourceParams
from forecasting.store.owners import reap_abandoned_runs
from forecasting.store.runs import (
    SeriesRecord,
    ingest_results_insert,
    ingest_run_finish,
    ingest_run_start,
    quarantine_insert,
)
from forecasting.store.writers import SeriesMeta, series_ensure, series_identity_conflict, series_upsert
from forecasting.validation import FrameValidator, check_expectation_specs

__all__ = ["IngestReport", "ingest", "ingest_series"]

_log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    ingest_run_id: int
    records: list[SeriesRecord] = field(default_factory=list)
    version_numbers: dict[str, int] = field(default_factory=dict)

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
        frequency=spec.frequency or (fetched.frequency if fetched else None),
        unit=spec.unit or (fetched.unit if fetched else None),
        config_name=config_name,
    )


def ingest_series(
    conn: psycopg.Connection,
    spec: SeriesConfig,
    *,
    config: PipelineConfig,
    ingest_run_id: int | None,
    validator: FrameValidator,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[SeriesRecord, int | None]:
    """Fetch, validate and store one series. Returns its outcome record and the current version number.

    Source errors and failed validation are outcomes, not exceptions; anything else is a bug and raises.
    """
    source = get_source(spec.source)
    params = spec.source_params()
    base = SeriesRecord(source=spec.source, series_name=spec.name, outcome="failed")
    other = series_identity_conflict(conn, _meta(spec, params, None, config.name))
    if other is not None:  # checked before downloading: storing it would overwrite the other config's series
        message = (f"series {spec.name!r} ({spec.source}) is already stored by config {other!r} with other "
                   f"parameters; series are identified by (source, name) across configs: rename it in config "
                   f"{config.name!r} or give it the same parameters as in {other!r}")
        _log.error("%s", message)
        return replace(base, error=message, retryable=False), None
    try:
        fetched = _fetch(
            source,
            params,
            spec,
            retries=config.ingest.retries,
            backoff=config.ingest.retry_backoff_seconds,
            sleep=sleep,
        )
    except SourceError as exc:
        _log.error("series %r: download failed: %s", spec.name, exc)
        return replace(base, error=str(exc), retryable=exc.retryable,
                       rate_limited=isinstance(exc, RateLimitError)), None

    frame = _apply_missing_policy(fetched.frame, spec)
    meta = _meta(spec, params, fetched, config.name)
    checked = validator.validate(
        frame, series=spec.name, bounds=source.bounds(params), extra=spec.expectations
    )
    if not checked.success:
        message = checked.message(spec.name)
        with conn.transaction():
            series_id = series_ensure(conn, meta, refresh=False)
            quarantine_insert(
                conn,
                source=spec.source,
                series_name=spec.name,
                series_id=series_id,
                ingest_run_id=ingest_run_id,
                reason=message,
                failed_expectations=checked.failed,
                validation_result=checked.summary,
                batch=frame,
            )
        _log.error("quarantined: %s", message)
        return replace(
            base,
            outcome="quarantined",
            series_id=series_id,
            error=message,
            retryable=False,
            n_rows=len(frame),
        ), None

    stored = series_upsert(
        conn,
        meta=meta,
        frame=frame.astype({VALUE: "float64"}),
        ingest_run_id=ingest_run_id,
        rtol=config.tolerance(spec),
    )
    _warn_about_shape(spec, frame, meta.frequency, stored)
    record = replace(
        base,
        outcome=stored.outcome.value,
        series_id=stored.series_id,
        version_id=stored.version_id,
        n_rows=stored.n_rows,
        n_added=stored.n_added,
        n_changed=stored.n_changed,
        n_removed=stored.n_removed,
    )
    return record, stored.version_no


def _warn_about_shape(spec: SeriesConfig, frame: pd.DataFrame, frequency: str | None, stored) -> None:
    """Say what a stored download will mean for modeling: no frequency, gaps, or a revision that drops points."""
    if stored.outcome.value == "revised" and stored.n_removed:
        _log.warning("series %r: the download has %d point(s) and drops %d stored point(s); stored as version %d "
                     "(earlier versions stay readable); if the source truncated its answer, re-ingest once it is "
                     "whole", spec.name, len(frame), stored.n_removed, stored.version_no)
    if frequency is None:
        _log.warning("series %r: no frequency can be inferred from its %d timestamp(s) (fewer than 3, or on no "
                     "regular grid); modeling will skip it until 'frequency' is set in the config to %s",
                     spec.name, len(frame), FREQUENCY_HINT)
        return
    if stored.outcome.value in ("initial", "revised") and len(frame) > 1:
        expected = len(pd.date_range(frame[TS].iloc[0], frame[TS].iloc[-1], freq=frequency))
        if expected > len(frame):
            _log.info("series %r: %s, with %d missing timestamp(s) between %s and %s (preprocessing."
                      "missing_timestamps decides how modeling treats them)", spec.name, frequency,
                      expected - len(frame), frame[TS].iloc[0], frame[TS].iloc[-1])


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
            _log.error("series block %r: cannot list its series: %s", failure.spec.name, failure.error)
            record = SeriesRecord(failure.spec.source, failure.spec.name, "failed", error=str(failure.error),
                                  retryable=failure.error.retryable)
            ingest_results_insert(conn, ingest_run_id=report.ingest_run_id, records=[record])
            report.records.append(record)
        for spec in _progress(selected, enabled=progress):
            started = time.perf_counter()
            try:
                record, version_no = ingest_series(
                    conn,
                    spec,
                    config=config,
                    ingest_run_id=report.ingest_run_id,
                    validator=validator,
                    sleep=sleep,
                )
            except Exception as exc:  # a bug or a database fault in one series must not hide the others
                _log.exception("series %r: unexpected error", spec.name)
                record, version_no = (
                    SeriesRecord(spec.source, spec.name, "failed", error=f"{type(exc).__name__}: {exc}"),
                    None,
                )
            record = replace(record, duration_ms=int((time.perf_counter() - started) * 1000))
            ingest_results_insert(conn, ingest_run_id=report.ingest_run_id, records=[record])
            report.records.append(record)
            if version_no is not None:
                report.version_numbers[spec.name] = version_no
        ingest_run_finish(
            conn, ingest_run_id=report.ingest_run_id, n_series=len(selected) + len(unlisted),
            n_failed=len(report.failed)
        )
    return report


def _progress(items: list[SeriesConfig], *, enabled: bool) -> Iterable[SeriesConfig]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, desc="ingest", unit="series") as bar:
        for spec in bar:
            bar.set_postfix_str(spec.name)
            yield spec
