"""What the web app reads, each a parameterised query over the SQL views (``sql/views``), never a table.

Every function takes a connection (read-only, see ``readonly.py``) and keyword arguments, and returns plain
JSON-able dicts and lists: NaN becomes None, timestamps stay ``datetime`` (FastAPI writes them as ISO 8601).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import psycopg

from forecasting.analysis import signals
from forecasting.web.errors import InvalidParameter, InvalidRequest, NotFound

__all__ = [
    "backtest_leaderboard",
    "forecast_read",
    "pipelines_list",
    "price_signal",
    "runs_list",
    "series_history",
    "series_identity",
    "series_targets_list",
    "series_versions",
    "top_features",
]


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rows(conn: psycopg.Connection, query: str, params: Sequence | dict = ()) -> list[dict]:
    cursor = conn.execute(query, params)
    names = [d.name for d in cursor.description]
    return [{n: _clean(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def pipelines_list(conn: psycopg.Connection) -> list[dict]:
    """Every pipeline with its series counts, interval levels and newest model and ingest run."""
    return _rows(conn, "SELECT * FROM v_pipelines ORDER BY pipeline")


def series_targets_list(conn: psycopg.Connection, *, pipeline: str | None = None) -> list[dict]:
    """The target series (the ones forecast) of one pipeline, or of all, with freshness and versions, and the outcome
    of the newest ingest of each: a target whose download failed is listed with its error, stored or not."""
    if pipeline is not None and not conn.execute("SELECT 1 FROM v_pipelines WHERE pipeline = %s",
                                                 (pipeline,)).fetchone():
        raise NotFound(f"pipeline {pipeline!r} is not known")
    return _rows(
        conn,
        "SELECT pipeline, series_name, source, frequency, unit, current_version, n_versions, n_points, last_ts, "
        "last_success_at, n_revisions, last_revision_at, last_ingest_run_id, last_ingest_outcome, last_ingest_error "
        "FROM v_pipeline_series "
        "WHERE role = 'target' AND (%(p)s::text IS NULL OR pipeline = %(p)s) ORDER BY pipeline, series_name, source",
        {"p": pipeline},
    )


def series_identity(conn: psycopg.Connection, *, name: str, source: str | None = None) -> dict:
    """The stored series ``name`` (``source`` tells two sources' series of one name apart)."""
    found = _rows(
        conn,
        "SELECT series_name, source, frequency, current_version, row_count AS n_points, last_ts, last_success_at, "
        "n_revisions FROM v_series_freshness WHERE series_name = %s AND (%s::text IS NULL OR source = %s)",
        (name, source, source),
    )
    if not found:
        raise NotFound(f"series {name!r} is not stored" + (f" for source {source!r}" if source else ""))
    if len(found) > 1:
        sources = ", ".join(sorted(r["source"] for r in found))
        raise InvalidRequest(f"series name {name!r} exists for several sources ({sources}): add ?source=")
    return found[0]


def series_versions(conn: psycopg.Connection, *, name: str, source: str) -> list[dict]:
    """Every version of the series, oldest first: why and when it was made and what it changed."""
    return _rows(
        conn,
        "SELECT version_no, reason, created_at, superseded_at, row_count, n_changed, n_added, n_removed, "
        "n_extended FROM v_revision_history WHERE series_name = %s AND source = %s ORDER BY version_no",
        (name, source),
    )


def _instant(as_of: str) -> datetime:
    # pandas reads 'nan' and '' as NaT (no instant: the current data would be shown as if it were the asked
    # one), and '-1' as a year Python's datetime cannot hold
    try:
        instant = pd.Timestamp(as_of)
        if pd.isna(instant):
            raise ValueError("not an instant")
        return (instant.tz_localize("UTC") if instant.tzinfo is None else instant).to_pydatetime()
    except (ValueError, TypeError, OverflowError):
        raise InvalidParameter("query.as_of", f"{as_of!r} is not a timestamp (e.g. 2026-11-01T00:00:00Z)") from None


def series_history(conn: psycopg.Connection, *, name: str, source: str | None = None, version: int | None = None,
                   as_of: str | None = None) -> dict:
    """The stored points of the current version, of ``version``, or as known at ``as_of`` (ISO 8601)."""
    if version is not None and as_of is not None:
        raise InvalidRequest("pass either version or as_of, not both")
    series = series_identity(conn, name=name, source=source)
    key = {"name": series["series_name"], "source": series["source"]}
    instant = None
    if as_of is not None:
        instant = _instant(as_of)
        version = conn.execute(
            "SELECT max(version_no) FROM v_revision_history WHERE series_name = %(name)s AND source = %(source)s "
            "AND created_at <= %(at)s", {**key, "at": instant}).fetchone()[0]
        if version is None:
            raise NotFound(f"series {name!r} had no stored version at {instant.isoformat()}")
    elif version is not None:
        if not conn.execute("SELECT 1 FROM v_revision_history WHERE series_name = %(name)s AND source = %(source)s "
                            "AND version_no = %(v)s", {**key, "v": version}).fetchone():
            raise NotFound(f"series {name!r} has no version {version}")
    else:
        version = series["current_version"]
    points = _rows(
        conn,
        "SELECT ts, value FROM v_observation_versions WHERE series_name = %(name)s AND source = %(source)s "
        "AND valid_from <= %(v)s AND (valid_to IS NULL OR valid_to > %(v)s) "
        "AND (%(at)s::timestamptz IS NULL OR recorded_at <= %(at)s) ORDER BY ts",
        {**key, "v": version, "at": instant},
    )
    return {"series": series["series_name"], "source": series["source"], "frequency": series["frequency"],
            "version": version, "current_version": series["current_version"], "as_of": instant,
            "n_points": len(points), "points": points}


def _run_of(conn: psycopg.Connection, run_id: int) -> dict:
    found = _rows(conn, "SELECT * FROM v_runs WHERE run_id = %s", (run_id,))
    if not found:
        raise NotFound(f"run {run_id} is not known")
    return found[0]


def forecast_read(conn: psycopg.Connection, *, name: str, source: str | None = None,
                  run: int | None = None) -> dict:
    """The champion forecast of the series (the current one, or the one run ``run`` published) with its bounds
    at every interval level stored for it, the model, the model version and the run."""
    series = series_identity(conn, name=name, source=source)
    key = {"name": series["series_name"], "source": series["source"], "run": run}
    if run is None:
        points = _rows(conn, "SELECT run_id, model, model_version_id, ts, step, yhat, last_ts, last_value "
                             "FROM champion_forecasts WHERE series_name = %(name)s AND source = %(source)s "
                             "ORDER BY step", key)
    else:
        _run_of(conn, run)
        points = _rows(conn, "SELECT run_id, model, model_version_id, ts, step, yhat, last_ts, last_value "
                             "FROM v_run_forecasts WHERE series_name = %(name)s AND source = %(source)s "
                             "AND run_id = %(run)s AND is_champion ORDER BY step", key)
    if not points:
        where = f"run {run}" if run is not None else "any successful run"
        raise NotFound(f"series {name!r} has no champion forecast from {where}")
    first = points[0]
    intervals = _rows(
        conn,
        "SELECT ts, level, lower, upper FROM v_forecast_intervals WHERE run_id = %(run)s "
        "AND model_version_id = %(mv)s AND series_name = %(name)s AND source = %(source)s ORDER BY level, ts",
        {**key, "run": first["run_id"], "mv": first["model_version_id"]},
    )
    by_ts: dict[datetime, dict[str, dict]] = {}
    for row in intervals:
        by_ts.setdefault(row["ts"], {})[str(row["level"])] = {"lower": row["lower"], "upper": row["upper"]}
    run_row = _run_of(conn, first["run_id"])
    return {
        "series": series["series_name"], "source": series["source"], "pipeline": run_row["pipeline"],
        "run_id": first["run_id"], "model": first["model"], "model_version_id": first["model_version_id"],
        "levels": sorted({row["level"] for row in intervals}),
        "configured_levels": sorted(run_row["interval_levels"]),
        "last_ts": first["last_ts"], "last_value": first["last_value"],
        "points": [{"ts": p["ts"], "step": p["step"], "yhat": p["yhat"], "intervals": by_ts.get(p["ts"], {})}
                   for p in points],
    }


def top_features(conn: psycopg.Connection, *, name: str, source: str, run_id: int, model_version_id: int,
                 limit: int = 10) -> list[dict]:
    """The features with the largest mean |SHAP| over the forecast's steps (empty for unexplained models)."""
    return _rows(
        conn,
        "SELECT feature, avg(abs(shap_value)) AS mean_abs_shap, avg(shap_value) AS mean_shap, count(*) AS n_steps "
        "FROM v_forecast_explanations WHERE run_id = %s AND model_version_id = %s AND series_name = %s "
        "AND source = %s GROUP BY feature ORDER BY mean_abs_shap DESC, feature LIMIT %s",
        (run_id, model_version_id, name, source, limit),
    )


def backtest_leaderboard(conn: psycopg.Connection, *, name: str, source: str | None = None, run: int | None = None,
                         mode: str = "latest", metric: str | None = None) -> dict:
    """Every model's backtest metrics for the series in one run (the newest that backtested it, or ``run``),
    overall and per forecast step, ranked by ``metric`` (default: the metric the run chose champions by)."""
    series = series_identity(conn, name=name, source=source)
    key = {"name": series["series_name"], "source": series["source"], "mode": mode}
    if run is None:
        run = conn.execute("SELECT max(run_id) FROM v_backtest_metrics WHERE series_name = %(name)s "
                           "AND source = %(source)s AND mode = %(mode)s", key).fetchone()[0]
        if run is None:
            raise NotFound(f"series {name!r} has no backtest in mode {mode!r}")
    run_row = _run_of(conn, run)
    rows = _rows(conn, "SELECT model, step, metric, value FROM v_backtest_metrics WHERE run_id = %(run)s "
                       "AND series_name = %(name)s AND source = %(source)s AND mode = %(mode)s "
                       "ORDER BY model, step NULLS FIRST, metric", {**key, "run": run})
    if not rows:
        raise NotFound(f"run {run} has no backtest of series {name!r} in mode {mode!r}")
    champion = _rows(conn, "SELECT model, metric, score, strategy FROM v_champions WHERE run_id = %(run)s "
                           "AND series_name = %(name)s AND source = %(source)s", {**key, "run": run})
    rank_by = metric or run_row["champion_metric"]
    models: dict[str, dict] = {}
    for row in rows:
        entry = models.setdefault(row["model"], {"model": row["model"], "metrics": {}, "steps": {}})
        target = entry["metrics"] if row["step"] is None else entry["steps"].setdefault(row["step"], {})
        target[row["metric"]] = row["value"]
    if not any(rank_by in m["metrics"] for m in models.values()):
        raise InvalidRequest(f"metric {rank_by!r} was not computed; known: {sorted({r['metric'] for r in rows})}")

    def score(entry: dict) -> float:
        value = entry["metrics"].get(rank_by)
        return math.inf if value is None else value

    ranked = sorted(models.values(), key=lambda e: (score(e), e["model"]))
    board = [{"rank": i, "model": e["model"], "metrics": e["metrics"],
              "steps": [{"step": s, "metrics": m} for s, m in sorted(e["steps"].items())]}
             for i, e in enumerate(ranked, start=1)]
    return {"series": series["series_name"], "source": series["source"], "pipeline": run_row["pipeline"],
            "run_id": run, "mode": mode, "ranked_by": rank_by,
            "champion": champion[0] if champion else None, "models": board}


def runs_list(conn: psycopg.Connection, *, pipeline: str | None = None, limit: int = 50) -> dict:
    """The newest model runs, ingest runs and Airflow DAG runs, newest first."""
    return {
        "runs": _rows(conn, "SELECT run_id, pipeline, command, triggered_by, status, started_at, finished_at, seconds, "
                            "n_forecast_series, n_skipped_series, n_failed_steps, n_data_issues, interval_levels, "
                            "data_as_of, error FROM v_runs "
                            "WHERE %(p)s::text IS NULL OR pipeline = %(p)s ORDER BY run_id DESC LIMIT %(n)s",
                      {"p": pipeline, "n": limit}),
        "ingest_runs": _rows(conn, "SELECT run_id AS ingest_run_id, config_name AS pipeline, triggered_by, status, "
                                   "started_at, finished_at, seconds, n_series, n_failed FROM v_pipeline_run_health "
                                   "WHERE kind = 'ingest' AND (%(p)s::text IS NULL OR config_name = %(p)s) "
                                   "ORDER BY run_id DESC LIMIT %(n)s", {"p": pipeline, "n": limit}),
        "airflow_runs": _rows(conn, "SELECT dag_id, run_id, run_type, state, started_at, finished_at, seconds, "
                                    "n_tasks, n_success, n_failed FROM v_airflow_runs "
                                    "WHERE %(p)s::text IS NULL OR dag_id LIKE 'forecasting\\_' || %(p)s || '\\_%%' "
                                    "ORDER BY started_at DESC NULLS LAST LIMIT %(n)s", {"p": pipeline, "n": limit}),
    }


PRICE_SOURCE = "yahoo_finance"


def price_signal(conn: psycopg.Connection, *, name: str, source: str | None = None,
                 threshold: float = signals.DEFAULT_THRESHOLD) -> dict:
    """For a price series: the expected return over the horizon, P(up), the up/down/hold signal, and the hit rate,
    strategy vs buy-and-hold return, volatility and 95% VaR over the champion's backtest windows."""
    if not 0.5 < threshold < 1:
        raise InvalidRequest(f"threshold must be between 0.5 and 1 (exclusive), got {threshold}")
    series = series_identity(conn, name=name, source=source)
    if series["source"] != PRICE_SOURCE:
        raise NotFound(f"series {name!r} is not a price series (source {PRICE_SOURCE})")
    key = {"name": series["series_name"], "source": series["source"]}
    found = _rows(conn, "SELECT * FROM v_price_forecasts WHERE series_name = %(name)s AND source = %(source)s", key)
    if not found:
        raise NotFound(f"series {name!r} has no champion forecast from any successful run")
    fc = found[0]
    levels = _rows(conn, "SELECT level, lower, upper FROM v_forecast_intervals WHERE run_id = %(run)s "
                         "AND model_version_id = %(mv)s AND series_name = %(name)s AND source = %(source)s "
                         "AND ts = %(ts)s", {**key, "run": fc["run_id"], "mv": fc["model_version_id"],
                                             "ts": fc["horizon_ts"]})
    bounds = {row["level"]: (row["lower"], row["upper"]) for row in levels}
    p_up = signals.up_probability(last_value=fc["last_value"], forecast=fc["yhat"], bounds=bounds)
    windows = _rows(
        conn,
        "SELECT DISTINCT ON (window_no) run_id, window_no, origin_value, y, yhat FROM v_backtest_forecasts "
        "WHERE series_name = %(name)s AND source = %(source)s AND model = %(model)s AND mode = 'latest' "
        "AND origin_value IS NOT NULL AND run_id = (SELECT max(run_id) FROM v_backtest_forecasts "
        "WHERE series_name = %(name)s AND source = %(source)s AND model = %(model)s AND mode = 'latest') "
        "ORDER BY window_no, step DESC", {**key, "model": fc["model"]})
    stats = signals.backtest_signal_stats(
        [signals.BacktestWindow(origin_value=w["origin_value"], actual=w["y"], forecast=w["yhat"]) for w in windows])
    expected = fc["expected_return"]
    return {
        "series": series["series_name"], "source": series["source"], "run_id": fc["run_id"], "model": fc["model"],
        "last_ts": fc["last_ts"], "last_value": fc["last_value"], "horizon": fc["horizon"],
        "horizon_ts": fc["horizon_ts"], "forecast": fc["yhat"], "expected_return": expected,
        "p_up": p_up, "threshold": threshold, "signal": signals.direction_signal(p_up, threshold=threshold),
        "backtest": {"run_id": windows[0]["run_id"] if windows else None, **stats,
                     "var_95": signals.value_at_risk_95(expected, stats["var_95_error"])
                     if expected is not None else None},
        "disclaimer": signals.DISCLAIMER,
    }
