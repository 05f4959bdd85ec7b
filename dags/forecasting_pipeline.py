"""Forecasting pipeline DAGs, three per pipeline config in the configs folder.

The folder is the Airflow Variable ``forecasting_config_dir`` (read at parse time, so it can be changed in
the UI), else ``$FORECASTING_CONFIG_DIR``, else ``examples/`` of this repository. For a config named ``demo``:

- ``forecasting_demo_ingest``: on the config's ``schedule``; one mapped task per source (``ingest_<source>``,
  in that source's pool: Google Trends and Yahoo Finance have their own), one mapped instance per shard of
  series: download, validate, version-aware upsert. A series that
  fails is recorded and never stops the others; the ``check`` task then fails the run, naming it.
- ``forecasting_demo_train``: on the data Asset (emitted when an ingest changed anything): backtest, choose
  champions, train and register models.
- ``forecasting_demo_predict``: on the model Asset: forecasts with intervals and explanations.

All logic lives in ``forecasting.orchestration``; tasks pass only ids and small summaries through XCom.
"""

from __future__ import annotations

import os
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
    dag,
    task,
)

from forecasting.model_names import MODEL_NAMES
from forecasting.orchestration import config_summaries

_DEFAULT_DIR = Path(__file__).resolve().parents[1] / "examples"


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


def _model_run(path: str, context: dict, **kwargs) -> dict:
    """Permanent errors (bad config, nothing stored) fail at once; anything else is retried by Airflow."""
    from forecasting.orchestration import PermanentTaskError, model_run

    try:
        return model_run(path, triggered_by=_label(context), **kwargs)
    except PermanentTaskError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


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

            return plan_shards(path, only=context["params"]["series"], shard_size=summary["shard_size"],
                               source=source)

        @task(map_index_template="{{ task.op_kwargs['shard']['source'] }}: "
                                 "{{ task.op_kwargs['shard']['names'] | join(', ') }}",
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
            changed = [n for r in _flat(results) for n, outcome in r["outcomes"].items()
                       if outcome in ("initial", "extended", "revised")]
            if not changed:  # nothing new: downstream training has nothing to learn from
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException("no series changed")
            return {"changed": changed}

        @task(trigger_rule="all_done")
        def check(results: list, planned: list) -> None:
            shard_results = _flat(results)
            failed = {n: e for r in shard_results for n, e in r["failed"].items()}
            # a crashed shard task leaves no result (and a failed mapped task alone does not fail the run)
            reported = {n for r in shard_results for n in r["outcomes"]}
            for shard in _flat(planned):
                failed.update({n: "its shard task failed (see the ingest task's log)"
                               for n in shard["names"] if n not in reported})
            if failed:
                from airflow.sdk.exceptions import AirflowFailException

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
         doc_md=f"Backtest, champion choice and training of pipeline `{name}`.",
         params={"force": Param(False, type="boolean", title="Retrain even if data and config are unchanged"),
                 "models": Param([], type=["array", "null"], items={"type": "string"}, examples=list(MODEL_NAMES),
                                title="Only these models (empty = the config's)")})
    def train():
        @task(outlets=[_model_asset(name)], execution_timeout=timedelta(hours=6))
        def backtest_and_train(**context) -> dict:
            models = context["params"]["models"] or None
            backtest = _model_run(path, context, command="backtest", models=models)
            trained = _model_run(path, context, command="train", force=context["params"]["force"], models=models)
            return {"backtest_run_id": backtest["run_id"], "train_run_id": trained["run_id"]}

        backtest_and_train()

    return train()


def predict_dag(summary: dict):
    name, path = summary["name"], summary["path"]

    schedule = [_model_asset(name)]
    if summary["predict_schedule"]:  # after each training and on its own clock
        schedule = AssetOrTimeSchedule(timetable=CronTriggerTimetable(summary["predict_schedule"], timezone="UTC"),
                                       assets=schedule)

    @dag(dag_id=f"forecasting_{name}_predict", schedule=schedule, start_date=START, catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, tags=["forecasting", name, "predict"],
         doc_md=f"Batch forecasts, intervals and explanations of pipeline `{name}`.",
         params={"horizon": Param(None, type=["null", "integer"], minimum=1, title="Steps ahead (empty = config)"),
                 "models": Param([], type=["array", "null"], items={"type": "string"}, examples=list(MODEL_NAMES),
                                title="Only these models (empty = the config's)")})
    def predict():
        @task(execution_timeout=timedelta(hours=2))
        def forecast(**context) -> dict:
            params = context["params"]
            return _model_run(path, context, command="predict", horizon=params["horizon"],
                              models=params["models"] or None)

        forecast()

    return predict()


for _summary in config_summaries(CONFIG_DIR):
    for _factory in (ingest_dag, train_dag, predict_dag):
        _dag = _factory(_summary)
        globals()[_dag.dag_id] = _dag
