"""Planning a modeling run: start (or, for a retried Airflow task, reopen) its pipeline run, split the
targets into partitions and record them; and publishing it: its status, set in one transaction, is what
makes its forecasts visible in the views."""

from __future__ import annotations

import logging

import psycopg

from forecasting.config import PipelineConfig
from forecasting.errors import ForecastingError
from forecasting.frequency import FREQUENCY_HINT, Frequency
from forecasting.ingest.series_groups import expand_groups, values_from_store
from forecasting.steps.partitions import Partition, split_partitions
from forecasting.steps.table import last_partition_step
from forecasting.store.data_issues import DataIssue, data_issues_write, run_data_issues
from forecasting.store.owners import reap_abandoned_runs
from forecasting.store.results import (
    pipeline_run_config,
    pipeline_run_finish,
    pipeline_run_pin,
    pipeline_run_reopen,
    pipeline_run_reusable,
    pipeline_run_start,
)
from forecasting.store.runs import ingest_failures
from forecasting.store.selectors import stored_series
from forecasting.store.steps import (
    Skip,
    partition_keys,
    partitions_write,
    planned_series_ids,
    run_skips,
    run_steps_abandon,
    skips_write,
    step_summaries,
)
from forecasting.store.tuning import tuned_parameters_read
from forecasting.tuning.search import searches, with_tuned
from forecasting.version import code_version

__all__ = ["finish_run", "plan_run", "planned_targets", "run_settings"]

_log = logging.getLogger(__name__)


def plan_run(conn: psycopg.Connection, config: PipelineConfig, *, command: str, triggered_by: str = "cli",
             ingest_run_id: int | None = None, reuse: bool = False,
             owned: bool = False) -> tuple[int, list[Partition]]:
    """Start the run and record its partitions. ``reuse``: plan into the newest run of the same command,
    config, code and trigger label if there is one (Airflow retries and cleared tasks). ``owned``: this process
    runs every step (the CLI); if it dies, the next run marks this one abandoned."""
    reap_abandoned_runs(conn)
    config = run_settings(conn, config, command=command)
    raw = config.model_dump(mode="json")
    found = pipeline_run_reusable(conn, command=command, config=raw, code_version=code_version(),
                                  triggered_by=triggered_by) if reuse else None
    if found is not None:
        run_id = found[0]
        pipeline_run_reopen(conn, run_id=run_id)
        _log.info("re-planning pipeline run %d (%s) for %s", run_id, found[1], triggered_by)
    else:
        run_id = pipeline_run_start(conn, command=command, config_name=config.name, config=raw,
                                    code_version=code_version(), triggered_by=triggered_by,
                                    ingest_run_id=ingest_run_id, owned=owned)
    try:
        partitions = _plan(conn, config, run_id, ingest_run_id)
    except BaseException as exc:
        # a run refused while planning (no series, a horizon too long) ends here: recorded as failed with its
        # reason, not left 'running' for the next run to call abandoned
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        pipeline_run_finish(conn, run_id=run_id, status="failed",
                            error=f"refused while planning: {exc}" if isinstance(exc, ForecastingError)
                            else f"planning failed: {type(exc).__name__}: {exc}")
        raise
    return run_id, partitions


def run_settings(conn: psycopg.Connection, config: PipelineConfig, *, command: str) -> PipelineConfig:
    """The config a run of ``command`` records and its steps read: each series_column block replaced by the series
    ingest stored from it, and the parameters 'forecasting tune' chose applied (except for tune itself)."""
    # a series_column block stands for the series ingest stored from it; the run records them one by one
    config = expand_groups(config, values_from_store(conn, config.name))
    if command != "tune":  # a search scores its own trials, not the parameters an earlier search chose
        config = _with_tuned_parameters(conn, config)
    return config


def planned_targets(config: PipelineConfig, stored: dict) -> tuple[list[tuple[int, str]], list[Skip]]:
    """(series id, frequency) of each stored target a run of ``config`` models, in config order, and a skip of each
    stored target whose frequency is unknown. ``stored``: name -> ``StoredSeries`` (the run's pinned versions, or
    the current ones)."""
    planned, unknown = [], []
    for spec in config.series_with_role("target"):
        if spec.name in stored:
            freq = spec.effective_frequency(stored[spec.name].frequency)
            problem = _frequency_problem(freq) if freq else None
            if problem:
                unknown.append(Skip(stored[spec.name].series_id, problem))
            elif freq:
                planned.append((stored[spec.name].series_id, freq))
            else:
                unknown.append(Skip(stored[spec.name].series_id,
                                    "unknown frequency: its timestamps lie on no regular grid (or there are fewer "
                                    f"than 3); set 'frequency' in the config to {FREQUENCY_HINT}"))
    return planned, unknown


def _plan(conn: psycopg.Connection, config: PipelineConfig, run_id: int,
          ingest_run_id: int | None) -> list[Partition]:
    """Pin the run's data, record the series whose data is missing or stale, split the targets into partitions and
    record them; raises when nothing can be run."""
    targets = config.series_with_role("target")
    # the run's snapshot: every step, mapped task and retry of this run reads these versions, not today's data
    pipeline_run_pin(conn, run_id=run_id, keys=[(s.source, s.name, s.role) for s in config.series])
    pinned = stored_series(conn, keys=[(s.source, s.name) for s in config.series], run_id=run_id)
    stored = {s.name: pinned[s.name] for s in targets if s.name in pinned}
    issues = _data_issues(conn, config, pinned, ingest_run_id)
    data_issues_write(conn, run_id=run_id, issues=issues)
    for issue in issues:
        _log.warning("run %d: %s %s: %s", run_id, issue.role, issue.name, issue.reason)
    never = [i for i in issues if i.role == "target" and not i.modelled]
    planned, unknown = planned_targets(config, stored)
    skips_write(conn, run_id=run_id, step="features", partition_key="", skips=unknown)
    if not planned:
        reasons = [f"{i.name}: {i.reason}" for i in never[:3]] + [s.reason for s in unknown[:3]]
        raise ForecastingError(f"no target series of {config.name!r} can be modelled: " + "; ".join(reasons)
                               + (" (run ingest first)" if never and not unknown else ""))
    _check_horizon(config, [stored[s.name] for s in targets if s.name in stored], planned)
    partitions = split_partitions(planned, config.modeling.partition_size)
    partitions_write(conn, run_id=run_id, partitions=partitions)
    _log.info("run %d: %d target series in %d partition(s): %s", run_id, len(planned), len(partitions),
              ", ".join(p.label for p in partitions))
    return partitions


def _data_issues(conn: psycopg.Connection, config: PipelineConfig, pinned: dict,
                 ingest_run_id: int | None) -> list[DataIssue]:
    """The run's series whose data is missing (never stored: a target is left out, a feature's columns are) or
    stale (the download failed in the run's own ingest: modelled on the version stored before, so its models and
    forecasts stay what they were). Either makes the run partial: the outcome says the run did not do it all."""
    keys = [(s.source, s.name) for s in config.series]
    own = ingest_failures(conn, keys=keys, ingest_run_id=ingest_run_id) if ingest_run_id is not None else {}
    newest = ingest_failures(conn, keys=[k for k in keys if k[1] not in pinned])
    issues = []
    for spec in config.series:
        key = (spec.source, spec.name)
        if spec.name in pinned and key in own:
            issues.append(DataIssue(spec.source, spec.name, spec.role, pinned[spec.name].series_id, True,
                                    f"{_failure_text(own[key])}; modelled on the data stored before (up to "
                                    f"{pinned[spec.name].last_ts})"))
        elif spec.name not in pinned:
            failure = own.get(key) or newest.get(key)
            why = _failure_text(failure) if failure else "no ingest has stored it yet"
            left_out = "not modelled" if spec.role == "target" else "the models run without it"
            issues.append(DataIssue(spec.source, spec.name, spec.role, None, False, f"not stored: {why}; {left_out}"))
    return issues


def _failure_text(failure: tuple[int, str, str | None]) -> str:
    ingest_run_id, outcome, error = failure
    what = "download failed" if outcome == "failed" else "quarantined"
    detail = (error or "").strip().splitlines()[0][:300] if error else ""
    return f"{what} in ingest run {ingest_run_id}" + (f": {detail}" if detail else "")


def _frequency_problem(freq: str) -> str | None:
    try:
        Frequency.parse(freq)
    except ValueError as exc:
        return f"frequency: {exc}"
    return None


def _with_tuned_parameters(conn: psycopg.Connection, config: PipelineConfig) -> PipelineConfig:
    """The config with the parameters 'forecasting tune' chose, for each model whose section still has a search
    (removing the search is how a user goes back to the config's own settings). Recorded in the run's config,
    they reach every step, the fingerprints and the registered model versions."""
    stored = tuned_parameters_read(conn, config_name=config.name)
    applied = {name: stored[name] for name in searches(config) if name in stored}
    if not applied:
        return config
    for name, tuned in applied.items():
        _log.info("%s: using the parameters of tune run %d, trial %d: %s, target lags %s", name,
                  tuned["tune_run_id"], tuned["trial"], tuned["params"], tuned["target_lags"] or "as configured")
    return with_tuned(config, applied)


def _check_horizon(config: PipelineConfig, stored: list, planned: list[tuple[int, str]]) -> None:
    """Refuse, before any work, a horizon no stored series can support: longer than the longest series, or
    reaching past the last timestamp pandas can represent (year 2262)."""
    import pandas as pd

    horizon = config.preprocessing.horizon
    longest = max(s.row_count for s in stored)
    if horizon >= longest:
        raise ForecastingError(f"{config.name!r}: preprocessing.horizon {horizon} is not below the length of the "
                               f"longest stored target series ({longest} points): nothing can be backtested or "
                               "forecast that far")
    last = {s.series_id: s.last_ts for s in stored}
    for series_id, freq in planned:
        try:
            pd.date_range(last[series_id], periods=horizon + 1, freq=freq).as_unit("ns")  # the models work in ns
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            raise ForecastingError(f"{config.name!r}: preprocessing.horizon {horizon} steps of {freq!r} after "
                                   f"{last[series_id]} pass the last date pandas can represent (2262-04-11)") from None


def finish_run(conn: psycopg.Connection, *, run_id: int) -> tuple[str, str | None]:
    """Publish the run: 'succeeded' when every partition got through its last step with no series skipped and
    every series' data stored and fresh, 'partial' when some series were skipped, some partitions failed (the
    others' results are published) or some series' data was missing or stale (``run_data_issues``: a target that
    failed at download), 'failed' when no partition got through or no target's data was fresh.

    Views show a run's forecasts only once it is published, so they never show half of a run. Returns the
    status and the errors of the steps that failed (None when none did).
    """
    command, _ = pipeline_run_config(conn, run_id=run_id, series_names=[])
    last = last_partition_step(command).name
    # a step still 'running' now never will finish: its process died (an Airflow task killed, Ctrl+C in the CLI)
    run_steps_abandon(conn, run_id=run_id, reason="abandoned: the step's process ended before it recorded an "
                                                  "outcome (killed or interrupted)")
    steps = step_summaries(conn, run_id=run_id)
    skips = run_skips(conn, run_id=run_id)
    planned = partition_keys(conn, run_id=run_id)
    done = set(steps.loc[(steps["step"] == last) & (steps["status"] == "succeeded"), "partition_key"]) \
        if not steps.empty else set()
    failed = steps[steps["status"] != "succeeded"] if not steps.empty else steps
    not_done = [k for k in planned if k not in done]
    issues = run_data_issues(conn, run_id=run_id)
    stale = set(issues.loc[(issues["role"] == "target") & issues["modelled"], "series_id"]) if not issues.empty \
        else set()
    planned_ids = set(planned_series_ids(conn, run_id=run_id))
    none_fresh = bool(planned_ids) and planned_ids <= stale  # every target's download failed in the run's ingest
    status = "failed" if not done or none_fresh else \
        "partial" if not_done or not skips.empty or not issues.empty else "succeeded"
    summary = {
        "steps": {f"{r.step} {r.partition_key}".strip(): {"status": r.status, "seconds": r.seconds}
                  for r in steps.itertuples(index=False)},
        "partitions_not_done": not_done,
        "skipped_series": sorted(set(skips.loc[skips["model"].isna(), "series"])) if not skips.empty else [],
        "model_skips": int(skips["model"].notna().sum()) if not skips.empty else 0,
        "data_issues": {r.series: r.reason for r in issues.itertuples(index=False)},
    }
    errors = [f"{r.step} {r.partition_key}: {r.error}" for r in failed.itertuples(index=False)]
    errors += [f"partition {k}: its {last} step did not run" for k in not_done
               if failed.empty or k not in set(failed["partition_key"])]
    if none_fresh:
        errors += ["no target has fresh data: " + "; ".join(f"{r.series}: {r.reason}" for r in
                                                            issues.head(3).itertuples(index=False))]
    error = "; ".join(errors) or None
    pipeline_run_finish(conn, run_id=run_id, status=status, summary=summary, error=error)
    for row in (skips[skips["model"].isna()] if not skips.empty else skips).itertuples(index=False):
        _log.warning("run %d: series %s skipped (%s): %s", run_id, row.series, row.step, row.reason)
    return status, error
