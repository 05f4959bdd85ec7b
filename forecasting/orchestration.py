"""What the Airflow tasks call: small JSON-able inputs and outputs around the package's steps.

The DAG file imports this module at parse time, so its top level imports only the standard library and
YAML; everything heavy (pandas, models, Great Expectations) is imported inside the functions. Nothing here
imports Airflow at module level, so the functions are testable without it; the database comes
from the Airflow connection ``forecasting_db`` when one is defined, else the usual resolution (environment
URL, then the embedded server).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, urlencode

import yaml

__all__ = [
    "AIRFLOW_CONN_ID",
    "PermanentTaskError",
    "RateLimitedShardError",
    "RetryableShardError",
    "airflow_task_slots",
    "changed_series",
    "config_summaries",
    "database_for_airflow",
    "ingest_shard",
    "model_step",
    "plan_model_run",
    "plan_shards",
    "publish_run",
    "record_dag_run",
    "run_step",
    "shard_label",
    "training_needed",
]

_log = logging.getLogger(__name__)

AIRFLOW_CONN_ID = "forecasting_db"


class PermanentTaskError(RuntimeError):
    """A failure retrying cannot fix (bad config, nothing stored yet); the DAG fails the task at once."""


class RetryableShardError(RuntimeError):
    """Some series of a shard hit transient source errors; the rest are stored. Retrying is idempotent."""


class RateLimitedShardError(RetryableShardError):
    """A source of the shard answered HTTP 429: the DAG's retry policy waits longer before the next try."""


def config_summaries(directory: Path) -> list[dict]:
    """Name, schedule, path and ingest settings of every pipeline YAML in ``directory``; for a file that cannot
    be read, ``{"error": ..., "path": ..., "stem": ...}`` instead, so one broken file never hides the others.

    Only the YAML and its ``ingest`` section are read (no pandas, no sources): this runs every time Airflow
    parses the DAG file. The full config is validated inside the tasks.
    """
    out = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            summary = _config_summary(path)
        except Exception as exc:  # noqa: BLE001 - reported as that file's own error DAG
            _log.warning("config %s is invalid: %s", path, exc)
            summary = {"error": f"{path.name}: {exc}", "path": str(path.resolve()), "stem": path.stem}
        if summary is not None:
            out.append(summary)
    return out


def _config_summary(path: Path) -> dict | None:
    from forecasting.ingest.settings import IngestSettings

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or "name" not in raw:
        return None
    ingest = IngestSettings.model_validate(raw.get("ingest") or {})
    series = [s for s in raw.get("series") or [] if isinstance(s, dict)]
    return {"name": str(raw["name"]), "schedule": raw.get("schedule"), "path": str(path.resolve()),
            "description": raw.get("description") or "", "shard_size": ingest.shard_size,
            "predict_schedule": (raw.get("prediction") or {}).get("schedule"),
            "sources": sorted({str(s["source"]) for s in series if "source" in s}),
            "series_names": [str(s["name"]) for s in series if "name" in s],
            "retries": ingest.retries, "retry_delay_seconds": ingest.retry_backoff_seconds,
            "rate_limit_delay_seconds": ingest.rate_limit_backoff_seconds}


def database_for_airflow():
    """The Airflow connection ``forecasting_db`` through the postgres provider's ``PostgresHook`` when it is
    defined (its libpq extras such as ``sslmode`` kept, IAM tokens resolved by the hook), else the CLI's
    resolution: ``$FORECASTING_DATABASE_URL``, then the embedded server."""
    from forecasting.db import Database, resolve_database

    try:
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # used without Airflow
        return resolve_database()
    hook = PostgresHook(postgres_conn_id=AIRFLOW_CONN_ID)
    try:
        connection = hook.connection
    except AirflowNotFoundException:
        return resolve_database()
    extras = {k: str(v) for k, v in connection.extra_dejson.items() if k not in hook.ignored_extra_options}
    return Database(url=_libpq_url_of(hook.sqlalchemy_url, extras), embedded=False)


def _libpq_url_of(url, extras: dict[str, str]) -> str:
    """A libpq URL from the hook's SQLAlchemy URL. Every part is percent-encoded: a Unix-socket directory as
    host (``/var/run/postgresql``) must read ``%2Fvar%2Frun%2Fpostgresql`` there, which SQLAlchemy does not do."""
    user = quote(url.username or "", safe="")
    if url.password:
        user += ":" + quote(url.password, safe="")
    netloc = (user + "@" if user else "") + quote(url.host or "", safe="") + (f":{url.port}" if url.port else "")
    query = urlencode({**dict(url.query), **extras})
    return f"postgresql://{netloc}/{quote(url.database or '', safe='')}" + (f"?{query}" if query else "")


def plan_shards(config_path: str, *, only: list[str] | None, shard_size: int,
                source: str | None = None) -> list[dict]:
    """Series grouped by source into shards of at most ``shard_size``; only ``source``'s when given (each
    source's shards are one mapped task, in that source's pool). An invalid config is a PermanentTaskError:
    retrying cannot fix it."""
    from forecasting.config import load_config
    from forecasting.errors import ForecastingError, SourceError
    from forecasting.ingest.series_groups import GroupFailure, expand_groups, values_from_source

    try:
        config = expand_groups(load_config(config_path), values_from_source)
        selected = config.select(only or None)
    except GroupFailure as exc:  # a long file that cannot be read: its series cannot even be listed
        if exc.error.retryable:
            raise
        raise PermanentTaskError(f"series block {exc.spec.name!r}: {exc.error}") from exc
    except (ForecastingError, SourceError) as exc:
        raise PermanentTaskError(str(exc)) from exc
    by_source: dict[str, list[str]] = {}
    for spec in selected:
        if source is None or spec.source == source:
            by_source.setdefault(spec.source, []).append(spec.name)
    shards = []
    for name, names in sorted(by_source.items()):
        for start in range(0, len(names), shard_size):
            part = names[start:start + shard_size]
            shards.append({"source": name, "names": part, "label": shard_label(name, part)})
    return shards


# Airflow keeps a mapped instance's label in a 250-character column; PostgreSQL rejects a longer one (SQLite,
# which dag.test() uses, does not), and the task that rendered it is then marked failed
_LABEL_LIMIT = 250


def shard_label(source: str, names: list[str]) -> str:
    """``csv: a, b, c`` for a few series, ``csv: first … last (250 series)`` for more; never over the limit."""
    label = f"{source}: " + (", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]} ({len(names)} series)")
    return label if len(label) <= _LABEL_LIMIT else label[:_LABEL_LIMIT - 1] + "…"


def changed_series(triggered_by: str) -> list[str]:
    """Series the ingest of one Airflow DAG run stored as new, extended or revised, over all tries of its
    shard tasks (a retried shard finds its series already stored and reports them unchanged)."""
    from forecasting.store.runs import ingest_changed_series

    with database_for_airflow().connect() as conn:
        return ingest_changed_series(conn, triggered_by=triggered_by)


def training_needed(config_path: str, *, triggered_by: str) -> dict:
    """What the ingest DAG's ``publish`` task decides on: ``changed``, the series this Airflow run's ingest stored
    as new, extended or revised (``changed_series``); ``missing``, partition key -> why its models are not current
    (``forecasting.steps.current``: no registered version for its current data, settings and code); ``current``,
    partition key -> the run whose models are; ``train``, whether training is needed (``missing`` is not empty,
    whatever ``changed`` says; when the config cannot be read, ``changed`` is not empty); ``message``, the
    decision in words for the task log. Reads versions, run records
    and fingerprints only (no data loaded, nothing fitted)."""
    from forecasting.config import load_config
    from forecasting.errors import ForecastingError
    from forecasting.steps.current import model_currency
    from forecasting.store.runs import ingest_changed_series

    with database_for_airflow().connect() as conn:
        changed = ingest_changed_series(conn, triggered_by=triggered_by)
        what = (f"{len(changed)} series changed in this run's ingest: {', '.join(changed[:50])}"
                + (f" and {len(changed) - 50} more" if len(changed) > 50 else "")
                if changed else "no series changed in this run's ingest")
        try:
            partitions = model_currency(conn, load_config(config_path))
        except ForecastingError as exc:
            # the config became invalid since the ingest started: what was stored is still announced when something
            # changed, and the train DAG's plan task then fails with this error for the user to see
            message = (f"{what}; whether the models are current cannot be decided: {exc}: the data Asset is "
                       + ("emitted (the train DAG will report the error)" if changed else "not emitted"))
            return {"train": bool(changed), "changed": changed, "missing": {}, "current": {}, "message": message}
    missing = {p.key: "; ".join(p.missing) for p in partitions if not p.current}
    current = {p.key: p.train_run for p in partitions if p.current}
    if missing:
        message = (f"{what}; {len(missing)} of {len(partitions)} partition(s) lack current models: the data Asset "
                   "is emitted, training runs\n" + "\n".join(f"  {key}: {why}" for key, why in missing.items()))
    elif partitions:
        runs = ", ".join(str(r) for r in sorted(set(current.values())))
        message = (f"{what}; every partition has current models (registered for its current data, settings and "
                   f"code by pipeline run(s) {runs}): the data Asset is not emitted, training does not run")
    else:
        message = (f"{what}; no stored target series can be modelled yet: the data Asset is not emitted, training "
                   "does not run")
    return {"train": bool(missing), "changed": changed, "missing": missing, "current": current, "message": message}


def ingest_shard(config_path: str, names: list[str], *, triggered_by: str, final_try: bool) -> dict:
    """Ingest one shard; returns outcomes. Raises RetryableShardError (after storing the rest) when some
    series failed transiently and Airflow still has tries left."""
    from forecasting.config import load_config
    from forecasting.ingest.pipeline import ingest

    config = load_config(config_path)
    # Airflow retries the task with its own backoff; retrying inside the task as well would multiply waits
    config = config.model_copy(update={"ingest": config.ingest.model_copy(update={"retries": 0})})
    report = ingest(database_for_airflow(), config, series=names, config_path=config_path, triggered_by=triggered_by)
    _log.info("ingest run %d, per series:\n%s", report.ingest_run_id, _outcome_table(report.records))
    transient = [r for r in report.records if r.outcome == "failed" and r.retryable]
    if transient and not final_try:
        names = ", ".join(r.series_name for r in transient)
        if any(r.rate_limited for r in transient):
            raise RateLimitedShardError(f"rate-limited (HTTP 429) for {names}; stored the others")
        raise RetryableShardError(f"transient source errors for {names}; stored the others")
    return {
        "ingest_run_id": report.ingest_run_id,
        "outcomes": {r.series_name: r.outcome for r in report.records},
        "failed": {r.series_name: r.error for r in report.failed},
        "changed": any(r.outcome in ("initial", "extended", "revised") for r in report.records),
    }


def _outcome_table(records) -> str:
    width = max([len(r.series_name) for r in records] + [6])
    lines = [f"  {'series':<{width}}  {'outcome':<11}  {'rows':>7}  detail"]
    for r in records:
        detail = (r.error or "").splitlines()[0][:160] if r.error else ""
        lines.append(f"  {r.series_name:<{width}}  {r.outcome:<11}  {r.n_rows if r.n_rows is not None else '':>7}  "
                     f"{detail}")
    return "\n".join(lines)


def plan_model_run(config_path: str, *, command: str, triggered_by: str, horizon: int | None = None,
                   models: list[str] | None = None) -> list[dict]:
    """Start (or, for a retried task of the same DAG run, reopen) the pipeline run and record its partitions;
    returns one small dict per partition (run id, key, label) for the mapped step tasks."""
    from forecasting.config import load_config
    from forecasting.db import apply_migrations
    from forecasting.errors import ForecastingError
    from forecasting.steps.plan import plan_run

    try:
        config = load_config(config_path).with_overrides(horizon=horizon, models=models)
        with database_for_airflow().connect() as conn:
            apply_migrations(conn)
            run_id, partitions = plan_run(conn, config, command=command, triggered_by=triggered_by, reuse=True)
    except ForecastingError as exc:
        raise PermanentTaskError(str(exc)) from exc
    return [p.task(run_id) for p in partitions]


def airflow_task_slots() -> int | None:
    """How many task instances this machine's Airflow may run at once, read from its configuration inside an
    Airflow task: a Celery worker's ``[celery] worker_concurrency``, a LocalExecutor's ``[core] parallelism``.
    None outside an Airflow task and for other executors (KubernetesExecutor: one task per pod)."""
    import os

    if not os.environ.get("AIRFLOW_CTX_DAG_ID"):  # set by Airflow's task runner before a task executes
        return None
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - the variable is only ever set by Airflow
        return None
    executor = conf.get("core", "executor", fallback="") or ""
    if "Celery" in executor:
        return conf.getint("celery", "worker_concurrency", fallback=16)
    if "Local" in executor:
        return conf.getint("core", "parallelism", fallback=32)
    return None


def _share_cores_with_other_tasks() -> None:
    """Let ``modeling.n_jobs``'s default (cores // task slots) see this Airflow worker's slots, unless
    ``$FORECASTING_TASK_SLOTS`` already says how many there are."""
    import os

    from forecasting.models.parallel import TASK_SLOTS_ENV

    slots = airflow_task_slots()
    if slots is not None and slots >= 1 and not os.environ.get(TASK_SLOTS_ENV):
        os.environ[TASK_SLOTS_ENV] = str(slots)


def model_step(step: str, partition: dict, *, force: bool = False) -> dict:
    """One partition-scoped step (``forecasting.steps.table``) over one partition of a planned run; a small
    summary."""
    from forecasting.errors import ForecastingError
    from forecasting.steps.dispatch import run_partition_step

    _share_cores_with_other_tasks()
    try:
        with database_for_airflow().connect() as conn:
            return run_partition_step(conn, step, run_id=partition["run_id"], key=partition["key"], force=force)
    except ForecastingError as exc:
        raise PermanentTaskError(f"{partition['label']}: {exc}") from exc


def run_step(step: str, run_id: int) -> dict:
    """One run-scoped step (select) over every partition of a planned run."""
    from forecasting.steps.dispatch import run_partition_step

    with database_for_airflow().connect() as conn:
        return run_partition_step(conn, step, run_id=run_id, key="")


def publish_run(run_id: int) -> dict:
    """Set the run's status in one transaction (its forecasts become current); what it skipped and why."""
    from forecasting.steps.plan import finish_run
    from forecasting.store.data_issues import run_data_issues
    from forecasting.store.steps import run_skips

    with database_for_airflow().connect() as conn:
        status, error = finish_run(conn, run_id=run_id)
        skips = run_skips(conn, run_id=run_id)
        issues = run_data_issues(conn, run_id=run_id)
    whole = skips[skips["model"].isna()] if not skips.empty else skips
    return {"run_id": run_id, "status": status, "error": error,
            "skipped": {r.series: r.reason for r in whole.itertuples(index=False)},
            "model_skips": int(len(skips) - len(whole)),
            "data_issues": {r.series: r.reason for r in issues.itertuples(index=False)}}


def record_dag_run(*, dag_id: str, run_id: str, run_type: str | None, state: str, started_at, finished_at,
                   task_states: list[str], message: str | None) -> None:
    """Upsert one Airflow DAG run (called by the plugin's listener on every state change)."""
    from forecasting.db import apply_migrations
    from forecasting.store.runs import airflow_dag_run_upsert

    with database_for_airflow().connect() as conn:
        apply_migrations(conn)
        airflow_dag_run_upsert(conn, dag_id=dag_id, run_id=run_id, run_type=run_type, state=state,
                               started_at=started_at, finished_at=finished_at, n_tasks=len(task_states),
                               n_success=task_states.count("success"),
                               n_failed=task_states.count("failed") + task_states.count("upstream_failed"),
                               message=message)
