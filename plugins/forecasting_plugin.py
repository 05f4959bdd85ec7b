"""Airflow plugin of the forecasting pipeline.

- The forecasting web app (``forecasting.web``: read-only pages and JSON API) mounted in Airflow's API server under
  ``/forecasts``, behind Airflow's own login, with a "Forecasts" entry in the UI's navigation that shows it in the
  Airflow UI.
- Links from the Airflow UI navigation to the Grafana dashboards (``$GRAFANA_URL``, default
  http://localhost:3000), under a "Forecasting" menu.
- A listener that records every run of the forecasting DAGs (state, times, task counts) in the forecast
  store's ``airflow_dag_runs`` table, which the pipeline-health dashboard reads.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin
from sqlalchemy.orm import object_session

_log = logging.getLogger(__name__)

DASHBOARDS = {
    "Forecast vs actual": "forecasting-forecast",
    "Backtest accuracy": "forecasting-backtest",
    "Data freshness and revisions": "forecasting-freshness",
    "Pipeline health": "forecasting-health",
}


FORECASTS_PREFIX = "/forecasts"


def grafana_links(base_url: str) -> list[dict]:
    base = base_url.rstrip("/")
    return [{"name": title, "href": f"{base}/d/{uid}", "destination": "nav", "category": "Forecasting"}
            for title, uid in DASHBOARDS.items()]


def forecasts_view() -> dict:
    """The "Forecasts" navigation entry: the web app's pages in an iframe of the Airflow UI (at /plugin/forecasts)."""
    return {"name": "Forecasts", "href": f"{FORECASTS_PREFIX}/", "destination": "nav", "url_route": "forecasts",
            "nav_top_level": True}


def _web_database():
    """The forecast store for the web app: ``$FORECASTING_WEB_DATABASE_URL`` (a read-only login) if set, else the
    store the DAGs use (the ``forecasting_db`` connection, else ``$FORECASTING_DATABASE_URL`` or the embedded
    server)."""
    from forecasting.db import Database, resolve_database
    from forecasting.orchestration import database_for_airflow

    if url := os.environ.get("FORECASTING_WEB_DATABASE_URL"):
        return Database(url=url)
    try:
        return database_for_airflow()
    except Exception:  # a connection lookup the API server cannot make must not take the pages down
        _log.exception("could not resolve the forecasting_db connection; using the default database resolution")
        return resolve_database()


def build_forecasts_app():
    """The web app, every route behind Airflow's login (the JWT cookie the UI sets, or a Bearer token) and the
    permission to see the Airflow website."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends

    from forecasting.web import create_app

    return create_app(_web_database, dependencies=[Depends(requires_access_view(AccessView.WEBSITE))])


class LazyAsgiApp:
    """An ASGI app built on its first request. Every Airflow component imports the plugin (the scheduler for its
    listener); only the API server serves the app, so only it pays for importing FastAPI and the web package."""

    def __init__(self, factory) -> None:
        self._factory = factory
        self._app = None
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        await self._app(scope, receive, send)


class DagRunRecorder:
    """Listener: one row per run of a ``forecasting_*`` DAG, updated on every state change.

    The hooks fire inside the scheduler's critical section, where any commit on Airflow's thread-local session
    raises "UNEXPECTED COMMIT" and takes the scheduler down. So the hook only reads the run's task states through
    the run's own session, and a background thread (with its own session, if a connection lookup needs one) writes
    to the forecast store, which also keeps a slow or unreachable store from stalling scheduling.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        atexit.register(self.flush)  # a no-op unless something is queued; inherited by forked children

    @staticmethod
    def snapshot(dag_run, msg: str | None) -> dict:
        # In the scheduler the run is bound to the scheduler's session: read through it, never commit it.
        # A detached run (dag.test()) has no such guard and may open a session of its own.
        session = object_session(dag_run)
        tis = dag_run.get_task_instances(session=session) if session is not None else dag_run.get_task_instances()
        return {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id,
                "run_type": str(getattr(dag_run.run_type, "value", dag_run.run_type)),
                "state": str(getattr(dag_run.state, "value", dag_run.state)),
                "started_at": dag_run.start_date, "finished_at": dag_run.end_date,
                "task_states": [str(getattr(ti.state, "value", ti.state)) for ti in tis], "message": msg or None}

    def _record(self, dag_run, msg: str | None) -> None:
        if not str(dag_run.dag_id).startswith("forecasting_"):
            return
        try:
            self._writer().put(self.snapshot(dag_run, msg))
        except Exception:  # recording lineage must never break the scheduler
            _log.exception("could not record DAG run %s/%s", dag_run.dag_id, dag_run.run_id)

    def _writer(self) -> queue.Queue:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():  # forked children get no copy of the thread
                self._queue, self._pid = queue.Queue(), os.getpid()
                self._thread = threading.Thread(target=self._drain, name="forecasting-dag-run-recorder",
                                                daemon=True)
                self._thread.start()
            return self._queue

    def _drain(self) -> None:
        from forecasting.orchestration import record_dag_run

        while (item := self._queue.get()) is not None:
            try:
                record_dag_run(**item)
            except Exception:
                _log.exception("could not record DAG run %s/%s", item["dag_id"], item["run_id"])

    def flush(self, timeout: float = 30.0) -> None:
        """Write what is queued (called at exit, so short-lived processes such as ``dag.test()`` lose nothing)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

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
    fastapi_apps = [{"app": LazyAsgiApp(build_forecasts_app), "url_prefix": FORECASTS_PREFIX, "name": "Forecasts"}]
    external_views = [forecasts_view(), *grafana_links(os.environ.get("GRAFANA_URL", "http://localhost:3000"))]
    listeners = [DagRunRecorder()]
