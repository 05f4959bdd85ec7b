"""Writers for pipeline runs, backtests, metrics, champions, forecasts and explanations.

Each writer replaces what the same run wrote before under the same key, inside one transaction, so
re-running a step of a run yields the same rows, never duplicates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg

from forecasting.store.jsonsafe import json_dumps
from forecasting.store.owners import current_owner

__all__ = [
    "backtest_errors_read",
    "backtest_forecasts_latest",
    "backtest_forecasts_write",
    "backtest_metrics_aggregate",
    "backtest_metrics_partition",
    "backtest_metrics_read",
    "backtest_metrics_write",
    "champions_set_versions",
    "champions_write",
    "feature_importance_write",
    "ForecastOutput",
    "forecasts_write_partition",
    "pipeline_run_config",
    "pipeline_run_finish",
    "pipeline_run_pin",
    "pipeline_run_reopen",
    "pipeline_run_reusable",
    "pipeline_run_start",
    "run_champion_table",
    "run_forecast_heads",
    "run_inflation",
]


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """Python-native rows (NaN -> None, numpy scalars -> Python) for COPY."""
    return [tuple(_cell(v) for v in row) for row in frame[list(columns)].itertuples(index=False, name=None)]


def _cell(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and not np.isfinite(value):  # NaN/inf metrics are stored as NULL
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if isinstance(value, np.generic) else value


def _copy(conn: psycopg.Connection, table: str, columns: Sequence[str], frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    # table and column names come from this module, never from user input
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for row in _rows(frame, columns):
            copy.write_row(row)
    return len(frame)


def _config_text_and_sha256(config: dict) -> tuple[str, str]:
    text = json.dumps(config, sort_keys=True, default=str)
    return text, hashlib.sha256(text.encode()).hexdigest()


def pipeline_run_start(
    conn: psycopg.Connection, *, command: str, config_name: str, config: dict, code_version: str,
    triggered_by: str = "cli", ingest_run_id: int | None = None, owned: bool = False,
) -> int:
    """Start a run. ``owned``: this process sees it through (the CLI), so if it dies the run is abandoned; an
    Airflow run spans many task processes and has no owner."""
    text, sha256 = _config_text_and_sha256(config)
    host, pid = current_owner() if owned else (None, None)
    with conn.transaction():
        return conn.execute(
            "INSERT INTO pipeline_runs (command, config_name, config_sha256, config, code_version, triggered_by, "
            "ingest_run_id, owner_host, owner_pid) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING run_id",
            (command, config_name, sha256, text, code_version, triggered_by, ingest_run_id, host, pid),
        ).fetchone()[0]


def pipeline_run_reusable(
    conn: psycopg.Connection, *, command: str, config: dict, code_version: str, triggered_by: str,
) -> tuple[int, str] | None:
    """(run id, status) of the newest run of the same command, config and code for the same trigger label (a
    retried or cleared Airflow task plans into the run it started before instead of starting another)."""
    row = conn.execute(
        "SELECT run_id, status FROM pipeline_runs WHERE command = %s AND config_sha256 = %s AND code_version = %s "
        "AND triggered_by = %s ORDER BY run_id DESC LIMIT 1",
        (command, _config_text_and_sha256(config)[1], code_version, triggered_by),
    ).fetchone()
    return (row[0], row[1]) if row else None


def pipeline_run_pin(conn: psycopg.Connection, *, run_id: int, keys: Sequence[tuple[str, str, str]]) -> None:
    """Pin the run's snapshot: the current version of each (source, name, role) series, with its row count and last
    timestamp now, in pipeline_run_data, and the instant in ``data_as_of``. Every step of the run reads these
    versions (``stored_series(run_id=...)``, ``panel_read(pinned=...)``), whatever is ingested later.

    One statement reads every version, so the snapshot is consistent across series. A re-planned run (an Airflow
    retry of its plan task) keeps what it pinned first: its steps may already have read it. Series never stored
    are not pinned."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO pipeline_run_data (run_id, series_version_id, role, row_count, last_ts) "
            "SELECT %s, v.version_id, k.role, v.row_count, v.last_ts "
            "FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(source, name, role) "
            "JOIN series s ON s.source = k.source AND s.name = k.name "
            "JOIN series_versions v ON v.series_id = s.series_id AND v.is_current "
            "WHERE NOT EXISTS (SELECT 1 FROM pipeline_run_data d JOIN series_versions dv "
            "ON dv.version_id = d.series_version_id WHERE d.run_id = %s AND dv.series_id = s.series_id) "
            "ON CONFLICT (run_id, series_version_id) DO NOTHING",
            (run_id, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], run_id),
        )
        conn.execute("UPDATE pipeline_runs SET data_as_of = coalesce(data_as_of, now()) WHERE run_id = %s",
                     (run_id,))


def pipeline_run_reopen(conn: psycopg.Connection, *, run_id: int) -> None:
    with conn.transaction():
        conn.execute("UPDATE pipeline_runs SET status = 'running', finished_at = NULL, error = NULL "
                     "WHERE run_id = %s", (run_id,))


def pipeline_run_config(conn: psycopg.Connection, *, run_id: int,
                        series_names: Sequence[str] | None = None) -> tuple[str, dict]:
    """(command, config) a run was started with. With ``series_names``, the config's series list keeps only
    those and the feature series: a step over one partition then holds a partition's worth of config, not
    the 100,000 entries of the whole run."""
    if series_names is None:
        row = conn.execute("SELECT command, config FROM pipeline_runs WHERE run_id = %s", (run_id,)).fetchone()
    else:
        row = conn.execute(
            "SELECT command, jsonb_set(config, '{series}', coalesce((SELECT jsonb_agg(e ORDER BY n) "
            "FROM jsonb_array_elements(config->'series') WITH ORDINALITY AS s(e, n) "
            "WHERE e->>'role' = 'feature' OR e->>'name' = ANY(%s)), '[]'::jsonb)) "
            "FROM pipeline_runs WHERE run_id = %s",
            (list(series_names), run_id),
        ).fetchone()
    if row is None:
        raise LookupError(f"pipeline run {run_id} does not exist")
    return row[0], row[1]


def pipeline_run_finish(
    conn: psycopg.Connection, *, run_id: int, status: str, summary: dict | None = None, error: str | None = None
) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE pipeline_runs SET status = %s, summary = %s, error = %s, finished_at = now() WHERE run_id = %s",
            (status, json_dumps(summary) if summary is not None else None, error, run_id),
        )


def backtest_forecasts_write(conn: psycopg.Connection, *, run_id: int, mode: str, series_ids: Sequence[int],
                             frame: pd.DataFrame) -> int:
    """Replace the run's backtest forecasts of ``series_ids`` (one partition) in ``mode``.

    ``frame``: model, series_id, window, cutoff, ts, step, y, yhat."""
    rows = frame.rename(columns={"window": "window_no"}).assign(run_id=run_id, mode=mode)
    columns = ["run_id", "mode", "model", "series_id", "window_no", "cutoff", "ts", "step", "y", "yhat"]
    with conn.transaction():
        conn.execute("DELETE FROM backtest_forecasts WHERE run_id = %s AND mode = %s AND series_id = ANY(%s)",
                     (run_id, mode, [int(i) for i in series_ids]))
        return _copy(conn, "backtest_forecasts", columns, rows)


def backtest_metrics_write(conn: psycopg.Connection, *, run_id: int, mode: str, frame: pd.DataFrame,
                           series_ids: Sequence[int] | None = None) -> int:
    """Replace the run's metrics of ``series_ids`` in ``mode`` (with ``series_ids`` None: its aggregates over
    series, the rows whose series_id is NULL).

    ``frame``: model, series_id (or None), step (or None), metric, value."""
    rows = frame.assign(run_id=run_id, mode=mode)
    columns = ["run_id", "mode", "model", "series_id", "step", "metric", "value"]
    with conn.transaction():
        if series_ids is None:
            conn.execute("DELETE FROM backtest_metrics WHERE run_id = %s AND mode = %s AND series_id IS NULL",
                         (run_id, mode))
        else:
            conn.execute("DELETE FROM backtest_metrics WHERE run_id = %s AND mode = %s AND series_id = ANY(%s)",
                         (run_id, mode, [int(i) for i in series_ids]))
        return _copy(conn, "backtest_metrics", columns, rows)


def backtest_metrics_read(conn: psycopg.Connection, *, run_id: int, mode: str, series_ids: Sequence[int],
                          metric: str | None = None) -> pd.DataFrame:
    """Per-series, per-step metrics of these series in a run (only ``metric`` when given): model, series_id,
    step, metric, value."""
    cur = conn.execute(
        "SELECT model, series_id, step, metric, value FROM backtest_metrics WHERE run_id = %s AND mode = %s "
        "AND series_id = ANY(%s) AND step IS NOT NULL AND (%s::text IS NULL OR metric = %s)",
        (run_id, mode, [int(i) for i in series_ids], metric, metric),
    )
    return pd.DataFrame(cur.fetchall(), columns=["model", "series_id", "step", "metric", "value"])


def backtest_errors_read(conn: psycopg.Connection, *, run_id: int, mode: str,
                         series_ids: Sequence[int]) -> pd.DataFrame:
    """The backtest forecasts of these series in a run, per window: model, series_id, window, cutoff, step, y,
    yhat."""
    cur = conn.execute(
        "SELECT model, series_id, window_no, cutoff, step, y, yhat FROM backtest_forecasts WHERE run_id = %s "
        "AND mode = %s AND series_id = ANY(%s)", (run_id, mode, [int(i) for i in series_ids]))
    return pd.DataFrame(cur.fetchall(), columns=["model", "series_id", "window", "cutoff", "step", "y", "yhat"])


# aggregates of a metric over series or steps: means, except coverage_n, the number of errors coverage rests on
_MEAN_OR_COUNT = "CASE WHEN metric = 'coverage_n' THEN sum({0}) ELSE avg({0}) END"


def backtest_metrics_aggregate(conn: psycopg.Connection, *, run_id: int, mode: str) -> int:
    """Replace a run's aggregate metrics (series NULL) by means of its per-series ones, in the database: per
    (model, step) over series, and per model over series' means. Memory stays flat whatever the run's size.
    ``coverage_n`` is a count of backtest errors: summed, not averaged."""
    with conn.transaction():
        conn.execute("DELETE FROM backtest_metrics WHERE run_id = %s AND mode = %s AND series_id IS NULL",
                     (run_id, mode))
        by_step = conn.execute(
            "INSERT INTO backtest_metrics (run_id, mode, model, series_id, step, metric, value) "
            f"SELECT run_id, mode, model, NULL, step, metric, {_MEAN_OR_COUNT.format('value')} FROM backtest_metrics "
            "WHERE run_id = %s AND mode = %s AND series_id IS NOT NULL AND step IS NOT NULL "
            "GROUP BY run_id, mode, model, step, metric",
            (run_id, mode),
        ).rowcount
        overall = conn.execute(
            "INSERT INTO backtest_metrics (run_id, mode, model, series_id, step, metric, value) "
            f"SELECT run_id, mode, model, NULL, NULL, metric, {_MEAN_OR_COUNT.format('series_mean')} FROM ("
            f"  SELECT run_id, mode, model, series_id, metric, {_MEAN_OR_COUNT.format('value')} AS series_mean "
            "  FROM backtest_metrics WHERE run_id = %s AND mode = %s AND series_id IS NOT NULL AND step IS NOT NULL "
            "  GROUP BY run_id, mode, model, series_id, metric) per_series "
            "GROUP BY run_id, mode, model, metric",
            (run_id, mode),
        ).rowcount
    return by_step + overall


def backtest_metrics_partition(conn: psycopg.Connection, *, run_id: int, series_ids: Sequence[int]) -> dict:
    """{model: {mode: {metric: mean over these series and steps}}} of a run's backtest (model lineage)."""
    rows = conn.execute(
        f"SELECT model, mode, metric, {_MEAN_OR_COUNT.format('value')} FROM backtest_metrics WHERE run_id = %s "
        "AND series_id = ANY(%s) AND step IS NOT NULL GROUP BY model, mode, metric",
        (run_id, [int(i) for i in series_ids]),
    ).fetchall()
    out: dict = {}
    for model, mode, metric, value in rows:
        out.setdefault(model, {}).setdefault(mode, {})[metric] = value
    return out


def backtest_forecasts_latest(conn: psycopg.Connection, *, config_name: str, series_ids: Sequence[int],
                              run_id: int) -> pd.DataFrame:
    """The 'latest'-mode backtest forecasts of these series that prediction in run ``run_id`` calibrates its
    intervals on: that run's own backtest when it has one (same snapshot), else the newest published (succeeded
    or partial) earlier run of the config that has them. Columns model, series_id, step, y, yhat."""
    ids = [int(i) for i in series_ids]
    rows = conn.execute(
        "SELECT b.model, b.series_id, b.step, b.y, b.yhat FROM backtest_forecasts b "
        "WHERE b.mode = 'latest' AND b.series_id = ANY(%s) AND b.run_id = (SELECT max(b2.run_id) "
        "FROM backtest_forecasts b2 JOIN pipeline_runs r USING (run_id) WHERE r.config_name = %s "
        "AND b2.series_id = ANY(%s) AND (r.run_id = %s OR (r.run_id < %s AND r.status IN ('succeeded', 'partial'))))",
        (ids, config_name, ids, run_id, run_id),
    ).fetchall()
    return pd.DataFrame(rows, columns=["model", "series_id", "step", "y", "yhat"])


def champions_write(conn: psycopg.Connection, *, run_id: int, frame: pd.DataFrame) -> int:
    """``frame``: series_id, model, model_version_id, metric, score, strategy (how it was chosen: the partition's
    champion strategy, or "untested")."""
    columns = ["run_id", "series_id", "model", "model_version_id", "metric", "score", "strategy"]
    with conn.transaction():
        conn.execute("DELETE FROM champions WHERE run_id = %s AND series_id = ANY(%s)",
                     (run_id, frame["series_id"].astype(int).tolist()))
        return _copy(conn, "champions", columns, frame.assign(run_id=run_id))


def champions_set_versions(conn: psycopg.Connection, *, run_id: int, series_ids: Sequence[int],
                           versions: dict[str, int]) -> None:
    """Point the run's champions of these series at the model versions their partition's training produced."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "UPDATE champions SET model_version_id = %s WHERE run_id = %s AND model = %s AND series_id = ANY(%s)",
            [(vid, run_id, model, [int(i) for i in series_ids]) for model, vid in versions.items()],
        )


def run_champion_table(conn: psycopg.Connection, *, run_id: int) -> pd.DataFrame:
    """A run's champions by series name: series, freq, champion, chosen by (the champion strategy), sMAPE, MASE
    (its latest backtest means)."""
    cur = conn.execute(
        "SELECT s.name AS series, p.frequency AS freq, c.model AS champion, c.strategy AS \"chosen by\", "
        "avg(m.value) FILTER (WHERE m.metric = 'smape') AS \"sMAPE\", "
        "avg(m.value) FILTER (WHERE m.metric = 'mase') AS \"MASE\" "
        "FROM champions c JOIN series s USING (series_id) "
        "LEFT JOIN run_partitions p ON p.run_id = c.run_id AND c.series_id = ANY(p.series_ids) "
        "LEFT JOIN backtest_metrics m ON m.run_id = c.run_id AND m.mode = 'latest' AND m.model = c.model "
        "AND m.series_id = c.series_id AND m.step IS NOT NULL "
        "WHERE c.run_id = %s GROUP BY s.name, p.frequency, c.model, c.strategy ORDER BY s.name",
        (run_id,),
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def run_forecast_heads(conn: psycopg.Connection, *, run_id: int, steps: int = 3) -> pd.DataFrame:
    """The first ``steps`` forecasts of every model and series of a run: series, model, step, yhat."""
    cur = conn.execute(
        "SELECT s.name AS series, m.name AS model, f.step, f.yhat FROM forecasts f "
        "JOIN series s USING (series_id) JOIN model_versions v USING (model_version_id) JOIN models m USING (model_id) "
        "WHERE f.run_id = %s AND f.step <= %s ORDER BY s.name, m.name, f.step",
        (run_id, steps),
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def run_inflation(conn: psycopg.Connection, *, run_id: int) -> pd.DataFrame:
    """Mean MASE per model and backtest mode of a run (how much revisions flatter the past)."""
    cur = conn.execute(
        "SELECT model, mode, value FROM backtest_metrics WHERE run_id = %s AND series_id IS NULL "
        "AND step IS NULL AND metric = 'mase' ORDER BY model, mode",
        (run_id,),
    )
    return pd.DataFrame(cur.fetchall(), columns=["model", "mode", "value"])


@dataclass(frozen=True)
class ForecastOutput:
    """One model version's forecasts of a partition. ``forecasts``: series_id, series_version_id, ts, step, yhat,
    last_ts, last_value; ``intervals``: series_id, ts, level, lo, hi; ``explanations`` (or None): series_id, ts,
    rank, feature, feature_value, shap_value, base_value."""

    model_version_id: int
    forecasts: pd.DataFrame
    intervals: pd.DataFrame
    explanations: pd.DataFrame | None = None


def forecasts_write_partition(conn: psycopg.Connection, *, run_id: int, series_ids: Sequence[int],
                              outputs: Sequence[ForecastOutput]) -> int:
    """Replace this run's forecasts of these series (one partition) by ``outputs``, with their intervals and
    explanations, in one transaction: a predict step killed half-way leaves none of its rows, and a retried one
    leaves no rows of a model that failed this time. Returns the forecast rows written."""
    written = 0
    with conn.transaction():
        # intervals and explanations go with their forecasts (ON DELETE CASCADE)
        conn.execute("DELETE FROM forecasts WHERE run_id = %s AND series_id = ANY(%s)",
                     (run_id, [int(i) for i in series_ids]))
        for out in outputs:
            key = {"run_id": run_id, "model_version_id": out.model_version_id}
            written += _copy(conn, "forecasts", ["run_id", "model_version_id", "series_id", "series_version_id",
                                                 "ts", "step", "yhat", "last_ts", "last_value"],
                             out.forecasts.assign(**key))
            _copy(conn, "forecast_intervals", ["run_id", "model_version_id", "series_id", "ts", "level", "lo", "hi"],
                  out.intervals.assign(**key))
            if out.explanations is not None:
                _copy(conn, "forecast_explanations", ["run_id", "model_version_id", "series_id", "ts", "rank",
                                                      "feature", "feature_value", "shap_value", "base_value"],
                      out.explanations.assign(**key))
    return written


def feature_importance_write(conn: psycopg.Connection, *, model_version_id: int, frame: pd.DataFrame) -> int:
    """``frame``: feature, mean_abs_shap, gain."""
    with conn.transaction():
        conn.execute("DELETE FROM feature_importance WHERE model_version_id = %s", (model_version_id,))
        return _copy(conn, "feature_importance", ["model_version_id", "feature", "mean_abs_shap", "gain"],
                     frame.assign(model_version_id=model_version_id))
