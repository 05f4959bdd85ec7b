"""Forecasting pipeline DAGs, three per pipeline config in the configs folder.

The folder is the Airflow Variable ``forecasting_config_dir`` (read at parse time, so it can be changed in
the UI), else ``$FORECASTING_CONFIG_DIR``, else ``examples/`` of this repository. For a config named ``demo``:

- ``forecasting_demo_ingest``: on the config's ``schedule``; one mapped task per source (``ingest_<source>``,
  in that source's pool: Google Trends and Yahoo Finance have their own), one mapped instance per shard of
  series: download, validate, version-aware upsert. A series that
  fails is recorded and never stops the others; the ``check`` task then fails the run, naming it.
- ``forecasting_demo_train``: on the data Asset, which ingest's ``publish`` emits when some partition has no
  registered model version for its current data, settings and code (``forecasting.steps.current``), whether or
  not that ingest changed anything: ``plan`` splits the targets into partitions; ``features``, ``backtest`` and
  ``train`` are mapped over them (one instance per partition, labelled "freq partition k of n (m series)");
  ``select`` picks champions over all of them; ``publish`` sets the run's status and emits the model Asset.
- ``forecasting_demo_predict``: on the model Asset: ``plan``, ``predict`` mapped over partitions with the
  registered model versions (it never trains), ``publish`` makes the forecasts current in one transaction.

All logic lives in ``forecasting.orchestration``; tasks pass only ids and small summaries through XCom.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    ExceptionRetryPolicy,
    Param,
    RetryRule,
    Variable,
    chain,
    dag,
    task,
)

from forecasting.model_names import MODEL_NAMES
from forecasting.orchestration import config_summaries
from forecasting.steps.table import Step, command_steps

_DEFAULT_DIR = Path(__file__).resolve().parents[1] / "examples"
_log = logging.getLogger(__name__)


def _config_dir() -> Path:
    folder = Variable.get("forecasting_config_dir", default=None) or os.environ.get("FORECASTING_CONFIG_DIR")
    return Path(folder) if folder else _DEFAULT_DIR


CONFIG_DIR = _config_dir()
START = pendulum.datetime(2024, 1, 1, tz="UTC")
DEFAULT_ARGS = {
    "owner": "forecasting",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}
# sources that rate-limit or scrape get pools of their own (created by scripts/airflow-local.sh and compose's
# airflow-init: google_trends 1 slot, yahoo_finance 2); the others share Airflow's default pool
POOLS = {"google_trends": "google_trends", "yahoo_finance": "yahoo_finance"}


def _data_asset(name: str) -> Asset:
    return Asset(name=f"forecasting_{name}_data", uri=f"x-forecasting://{name}/data")


def _model_asset(name: str) -> Asset:
    return Asset(name=f"forecasting_{name}_models", uri=f"x-forecasting://{name}/models")


def _flat(results: list) -> list[dict]:
    """Items of every source's list (shard plans or shard results; None where a task did not run)."""
    return [r for per_source in results for r in (per_source or []) if r]


def _label(context: dict) -> str:
    return f"airflow:{context['dag'].dag_id}:{context['run_id']}"


def _permanent(call, *args, **kwargs):
    """Permanent errors (bad config, nothing stored, no trained model) fail at once; others are retried."""
    from forecasting.orchestration import PermanentTaskError

    try:
        return call(*args, **kwargs)
    except PermanentTaskError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


_PARTITION_LABEL = "{{ task.op_kwargs['partition']['label'] }}"


def _planned_run_id(partitions: list[dict] | None) -> int:
    """The pipeline run the plan task started; a task after a failed plan (trigger rule all_done) fails."""
    if not partitions:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("the run was not planned (see the plan task)")
    return partitions[0]["run_id"]


def _step_task(step: Step, **task_kwargs):
    """A task running one partition-scoped step, mapped over the run's partitions."""
    if step.timeout_hours is not None:
        task_kwargs["execution_timeout"] = timedelta(hours=step.timeout_hours)

    @task(task_id=step.name, map_index_template=_PARTITION_LABEL, **task_kwargs)
    def run_step(partition: dict, **context) -> dict:
        from forecasting.orchestration import model_step

        force = bool(context["params"].get("force")) if step.forced else False
        return _permanent(model_step, step.name, partition, force=force)

    return run_step


def _run_task(step: Step):
    """A task running one run-scoped step over every partition whose earlier steps got through (all_done)."""

    @task(task_id=step.name, trigger_rule="all_done")
    def run_whole(partitions: list[dict] | None) -> dict:
        from forecasting.orchestration import run_step

        return run_step(step.name, _planned_run_id(partitions))

    return run_whole


def _command_tasks(command: str, partitions):
    """The tasks of ``command``'s steps (``forecasting.steps.table``), chained in their order. Every step reads what
    it needs from the store and screens its partition itself, so a partition whose earlier step failed does not
    hold back the others (all_done after the first); publish reports the failure."""
    tasks = []
    for position, step in enumerate(command_steps(command)):
        if step.scope == "run":
            tasks.append(_run_task(step)(partitions))
            continue
        rule = {"trigger_rule": "all_done"} if position else {}
        tasks.append(_step_task(step, **rule).expand(partition=partitions))
    chain(*tasks)
    return tasks[-1]


def _publish_task(outlets: list | None = None):
    # all_done: publish what the other partitions produced even when one partition's task failed
    @task(task_id="publish", outlets=outlets or [], trigger_rule="all_done")
    def publish(partitions: list[dict] | None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from forecasting.orchestration import publish_run

        result = publish_run(_planned_run_id(partitions))
        if result["status"] == "failed" or result["error"]:
            raise AirflowFailException(f"pipeline run {result['run_id']} {result['status']}: {result['error']}")
        return result

    return publish


def ingest_dag(summary: dict):
    name, path, data = summary["name"], summary["path"], _data_asset(summary["name"])
    # the config's ingest.retries / retry_backoff_seconds drive Airflow's retries of the download shards
    ingest_args = {**DEFAULT_ARGS, "retries": max(summary["retries"], 2),
                   "retry_delay": timedelta(seconds=summary["retry_delay_seconds"])}

    @dag(dag_id=f"forecasting_{name}_ingest", schedule=summary["schedule"], start_date=START, catchup=False,
         max_active_runs=1, default_args=ingest_args, tags=["forecasting", name, "ingest"],
         doc_md=f"Ingest of pipeline `{name}` ({path}). {summary['description']}",
         params={"series": Param([], type=["array", "null"], items={"type": "string"},
                                 examples=summary["series_names"], title="Only these series (empty = all)")})
    def ingest():
        @task
        def plan(source: str, **context) -> list[dict]:
            from forecasting.orchestration import plan_shards

            return _permanent(plan_shards, path, only=context["params"]["series"], shard_size=summary["shard_size"],
                              source=source)

        @task(map_index_template="{{ task.op_kwargs['shard']['label'] }}",
              retry_policy=ExceptionRetryPolicy(rules=[RetryRule(
                  exception="forecasting.orchestration.RateLimitedShardError",
                  retry_delay=timedelta(seconds=summary["rate_limit_delay_seconds"]),
                  reason="source rate limit (HTTP 429)")]))
        def ingest_shard(shard: dict, **context) -> dict:
            from forecasting.orchestration import ingest_shard as run_shard

            ti = context["ti"]
            return run_shard(path, shard["names"], triggered_by=_label(context),
                             final_try=ti.try_number > ti.max_tries)

        # all_done: announce what the other shards stored even when one shard task crashed; a source with no
        # series selected (trigger param) expands to zero shards and is skipped
        @task(outlets=[data], trigger_rule="all_done")
        def publish(results: list, **context) -> dict:
            from forecasting.orchestration import training_needed

            # what changed is read from the store, not the shards' return values (those are only the last try's);
            # whether to train, from the models registered for the current data, settings and code
            decision = training_needed(path, triggered_by=_label(context))
            _log.info(decision["message"])
            if not decision["train"]:
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(decision["message"].splitlines()[0])
            return decision

        @task(trigger_rule="all_done")
        def check(results: list, planned: list) -> None:
            from airflow.sdk.exceptions import AirflowFailException

            unplanned = [source for source, shards in zip(summary["sources"], planned, strict=True) if shards is None]
            if unplanned:  # its plan task failed (an invalid config): nothing of that source was ingested
                raise AirflowFailException("the ingest was not planned for source(s) " + ", ".join(unplanned)
                                           + " (see the plan task's log)")
            shard_results = _flat(results)
            failed = {n: e for r in shard_results for n, e in r["failed"].items()}
            # a crashed shard task leaves no result (and a failed mapped task alone does not fail the run)
            reported = {n for r in shard_results for n in r["outcomes"]}
            for shard in _flat(planned):
                failed.update({n: "its shard task failed (see the ingest task's log)"
                               for n in shard["names"] if n not in reported})
            if failed:
                raise AirflowFailException("series failed: " + "; ".join(f"{n}: {e}" for n, e in failed.items()))

        planned = {source: plan.override(task_id=f"plan_{source}")(source) for source in summary["sources"]}
        results = [ingest_shard.override(task_id=f"ingest_{source}", pool=POOLS.get(source, "default_pool"))
                   .expand(shard=shards) for source, shards in planned.items()]
        publish(results)
        check(results, list(planned.values()))

    return ingest()


def train_dag(summary: dict):
    name, path = summary["name"], summary["path"]

    @dag(dag_id=f"forecasting_{name}_train", schedule=[_data_asset(name)], start_date=START, catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, tags=["forecasting", name, "train"],
         doc_md=f"Pipeline `{name}`: plan partitions, then per partition features and backtest, the champion "
                "choice over all of them, training per partition, and publish (the model Asset).",
         params={"force": Param(False, type="boolean", title="Retrain even if data and config are unchanged"),
                 "models": Param([], type=["array", "null"], items={"type": "string"}, examples=list(MODEL_NAMES),
                                title="Only these models (empty = the config's)")})
    def train():
        @task
        def plan(**context) -> list[dict]:
            from forecasting.orchestration import plan_model_run

            return _permanent(plan_model_run, path, command="train", triggered_by=_label(context),
                              models=context["params"]["models"] or None)

        partitions = plan()
        _command_tasks("train", partitions) >> _publish_task([_model_asset(name)])(partitions)

    return train()


def predict_dag(summary: dict):
    name, path = summary["name"], summary["path"]

    schedule = [_model_asset(name)]
    if summary["predict_schedule"]:  # after each training and on its own clock
        schedule = AssetOrTimeSchedule(timetable=CronTriggerTimetable(summary["predict_schedule"], timezone="UTC"),
                                       assets=schedule)

    @dag(dag_id=f"forecasting_{name}_predict", schedule=schedule, start_date=START, catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, tags=["forecasting", name, "predict"],
         doc_md=f"Batch forecasts of pipeline `{name}` from the registered models (never trains): plan, "
                "predict per partition, publish.",
         params={"horizon": Param(None, type=["null", "integer"], minimum=1, title="Steps ahead (empty = config)"),
                 "models": Param([], type=["array", "null"], items={"type": "string"}, examples=list(MODEL_NAMES),
                                title="Only these models (empty = the config's)")})
    def predict():
        @task
        def plan(**context) -> list[dict]:
            from forecasting.orchestration import plan_model_run

            params = context["params"]
            return _permanent(plan_model_run, path, command="predict", triggered_by=_label(context),
                              horizon=params["horizon"], models=params["models"] or None)

        partitions = plan()
        _command_tasks("predict", partitions) >> _publish_task()(partitions)

    return predict()


def config_error_dag(summary: dict):
    """A DAG standing for a config file that cannot be turned into the pipeline's DAGs: it shows the error
    (description, and the failure of its one task) while the other configs' DAGs load as usual."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", summary["stem"])

    @dag(dag_id=f"forecasting_{stem}_config_error", schedule=None, start_date=START, catchup=False,
         tags=["forecasting", "config-error"], description=summary["error"][:500],
         doc_md=f"**This config cannot be loaded**: `{summary['path']}`\n\n```\n{summary['error']}\n```")
    def config_error():
        @task(retries=0)
        def show_error() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(summary["error"])

        show_error()

    return config_error()


def _check_schedules(summary: dict) -> None:
    """Raise on an invalid cron schedule now: Airflow checks it only after the file was imported, and an
    import error there would drop every pipeline's DAGs."""
    for key in ("schedule", "predict_schedule"):
        value = summary[key]
        if isinstance(value, str) and value not in ("@once", "@continuous"):
            try:
                CronTriggerTimetable(value, timezone="UTC").validate()
            except Exception as exc:
                raise ValueError(f"{key.replace('predict_', 'prediction.')} {value!r}: {exc}") from exc


def _pipeline_dags(summary: dict) -> list:
    if "error" in summary:
        return [config_error_dag(summary)]
    try:
        _check_schedules(summary)
        return [factory(summary) for factory in (ingest_dag, train_dag, predict_dag)]
    except Exception as exc:  # noqa: BLE001 - e.g. an invalid cron schedule: that config alone shows an error
        _log.warning("config %s: its DAGs cannot be built: %s", summary["path"], exc)
        return [config_error_dag({"error": f"{Path(summary['path']).name}: {type(exc).__name__}: {exc}",
                                  "path": summary["path"], "stem": Path(summary["path"]).stem})]


for _summary in config_summaries(CONFIG_DIR):
    for _dag in _pipeline_dags(_summary):
        globals()[_dag.dag_id] = _dag
