"""Airflow plugin of the forecasting pipeline.

- Links from the Airflow UI navigation to the Grafana dashboards (``$GRAFANA_URL``, default
  http://localhost:3000), under a "Forecasting" menu.
- A listener that records every run of the forecasting DAGs (state, times, task counts) in the forecast
  store's ``airflow_dag_runs`` table, which the pipeline-health dashboard reads.
"""

from __future__ import annotations

import logging
import os

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

_log = logging.getLogger(__name__)

DASHBOARDS = {
    "Forecast vs actual": "forecasting-forecast",
    "Backtest accuracy": "forecasting-backtest",
    "Data freshness and revisions": "forecasting-freshness",
    "Pipeline health": "forecasting-health",
}


def grafana_links(base_url: str) -> list[dict]:
    base = base_url.rstrip("/")
    return [{"name": title, "href": f"{base}/d/{uid}", "destination": "nav", "category": "Forecasting"}
            for title, uid in DASHBOARDS.items()]


class DagRunRecorder:
    """Listener: one row per run of a ``forecasting_*`` DAG, updated on every state change."""

    @staticmethod
    def _record(dag_run, msg: str) -> None:
        if not str(dag_run.dag_id).startswith("forecasting_"):
            return
        try:
            from forecasting.orchestration import record_dag_run

            states = [str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()]
            record_dag_run(dag_id=dag_run.dag_id, run_id=dag_run.run_id,
                           run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
                           state=str(getattr(dag_run.state, "value", dag_run.state)),
                           started_at=dag_run.start_date, finished_at=dag_run.end_date, task_states=states,
                           message=msg or None)
        except Exception:  # recording lineage must never break the scheduler
            _log.exception("could not record DAG run %s/%s", dag_run.dag_id, dag_run.run_id)

    @hookimpl
    def on_dag_run_running(self, dag_run, msg: str) -> None:
        self._record(dag_run, msg)

    @hookimpl
    def on_dag_run_success(self, dag_run, msg: str) -> None:
        self._record(dag_run, msg)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg: str) -> None:
        self._record(dag_run, msg)


class ForecastingPlugin(AirflowPlugin):
    name = "forecasting"
    external_views = grafana_links(os.environ.get("GRAFANA_URL", "http://localhost:3000"))
    listeners = [DagRunRecorder()]
