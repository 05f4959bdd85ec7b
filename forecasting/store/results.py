"""Writers for pipeline runs, backtests, metrics, champions, forecasts and explanations.

Each writer replaces what the same run wrote before under the same key, inside one transaction, so
re-running a step of a run yields the same rows, never duplicates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import psycopg

__all__ = [
    "backtest_forecasts_write",
    "backtest_metrics_write",
    "champions_write",
    "feature_importance_write",
    "forecasts_copy_forward",
    "forecasts_write",
    "pipeline_run_finish",
    "pipeline_run_start",
]


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """Python-native rows (NaN -> None, numpy scalars -> Python) for COPY."""
    return [tuple(_cell(v) for v in row) for row in frame[list(columns)].itertuples(index=False, name=None)]


def _cell(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
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
    triggered_by: str = "cli", ingest_run_id: int | None = None,
) -> int:
    text, sha256 = _config_text_and_sha256(config)
    with conn.transaction():
        return conn.execute(
            "INSERT INTO pipeline_runs (command, config_name, config_sha256, config, code_version, triggered_by, "
            "ingest_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING run_id",
            (command, config_name, sha256, text, code_version, triggered_by, ingest_run_id),
        ).fetchone()[0]


def pipeline_run_find_succeeded(
    conn: psycopg.Connection, *, command: str, config: dict, code_version: str, triggered_by: str,
) -> tuple[int, dict] | None:
    """The newest succeeded run of the same command, config and code for the same trigger (an Airflow DAG run)."""
    row = conn.execute(
        "SELECT run_id, summary FROM pipeline_runs WHERE command = %s AND config_sha256 = %s AND code_version = %s "
        "AND triggered_by = %s AND status = 'succeeded' ORDER BY run_id DESC LIMIT 1",
        (command, _config_text_and_sha256(config)[1], code_version, triggered_by),
    ).fetchone()
    return (row[0], row[1] or {}) if row else None


def pipeline_run_finish(
    conn: psycopg.Connection, *, run_id: int, status: str, summary: dict | None = None, error: str | None = None
) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE pipeline_runs SET status = %s, summary = %s, error = %s, finished_at = now() WHERE run_id = %s",
            (status, json.dumps(summary, default=str) if summary is not None else None, error, run_id),
        )


def backtest_forecasts_write(conn: psycopg.Connection, *, run_id: int, mode: str, frame: pd.DataFrame) -> int:
    """``frame``: model, series_id, window, cutoff, ts, step, y, yhat."""
    rows = frame.rename(columns={"window": "window_no"}).assign(run_id=run_id, mode=mode)
    columns = ["run_id", "mode", "model", "series_id", "window_no", "cutoff", "ts", "step", "y", "yhat"]
    with conn.transaction():
        conn.execute("DELETE FROM backtest_forecasts WHERE run_id = %s AND mode = %s", (run_id, mode))
        return _copy(conn, "backtest_forecasts", columns, rows)


def backtest_metrics_write(conn: psycopg.Connection, *, run_id: int, mode: str, frame: pd.DataFrame) -> int:
    """``frame``: model, series_id (or None), step (or None), metric, value."""
    rows = frame.assign(run_id=run_id, mode=mode)
    columns = ["run_id", "mode", "model", "series_id", "step", "metric", "value"]
    with conn.transaction():
        conn.execute("DELETE FROM backtest_metrics WHERE run_id = %s AND mode = %s", (run_id, mode))
        return _copy(conn, "backtest_metrics", columns, rows)


def champions_write(conn: psycopg.Connection, *, run_id: int, frame: pd.DataFrame) -> int:
    """``frame``: series_id, model, model_version_id, metric, score."""
    columns = ["run_id", "series_id", "model", "model_version_id", "metric", "score"]
    with conn.transaction():
        conn.execute("DELETE FROM champions WHERE run_id = %s AND series_id = ANY(%s)",
                     (run_id, frame["series_id"].astype(int).tolist()))
        return _copy(conn, "champions", columns, frame.assign(run_id=run_id))


def forecasts_write(
    conn: psycopg.Connection, *, run_id: int, model_version_id: int, forecasts: pd.DataFrame,
    intervals: pd.DataFrame, explanations: pd.DataFrame | None = None,
) -> int:
    """Replace this run's forecasts of one model version, with their intervals and explanations.

    ``forecasts``: series_id, series_version_id, ts, step, yhat, last_ts, last_value; ``intervals``:
    series_id, ts, level, lo, hi; ``explanations``: series_id, ts, rank, feature, feature_value, shap_value,
    base_value.
    """
    key = {"run_id": run_id, "model_version_id": model_version_id}
    with conn.transaction():
        conn.execute("DELETE FROM forecasts WHERE run_id = %s AND model_version_id = %s", (run_id, model_version_id))
        written = _copy(conn, "forecasts", ["run_id", "model_version_id", "series_id", "series_version_id", "ts",
                                            "step", "yhat", "last_ts", "last_value"], forecasts.assign(**key))
        _copy(conn, "forecast_intervals", ["run_id", "model_version_id", "series_id", "ts", "level", "lo", "hi"],
              intervals.assign(**key))
        if explanations is not None:
            _copy(conn, "forecast_explanations", ["run_id", "model_version_id", "series_id", "ts", "rank", "feature",
                                                  "feature_value", "shap_value", "base_value"],
                  explanations.assign(**key))
    return written


def forecasts_copy_forward(
    conn: psycopg.Connection, *, run_id: int, model_version_id: int, series_version_ids: dict[int, int],
) -> list[int]:
    """Reuse the newest stored forecasts of this model version for series whose data version did not change.

    Returns the series ids copied into ``run_id`` (their forecasts are not recomputed).
    """
    copied = []
    with conn.transaction():
        for series_id, series_version_id in series_version_ids.items():
            source_run = conn.execute(
                "SELECT max(run_id) FROM forecasts WHERE model_version_id = %s AND series_id = %s "
                "AND series_version_id = %s AND run_id <> %s",
                (model_version_id, series_id, series_version_id, run_id),
            ).fetchone()[0]
            if source_run is None:
                continue
            params = (run_id, source_run, model_version_id, series_id)
            conn.execute("DELETE FROM forecasts WHERE run_id = %s AND model_version_id = %s AND series_id = %s",
                         (run_id, model_version_id, series_id))
            conn.execute(
                "INSERT INTO forecasts (run_id, model_version_id, series_id, series_version_id, ts, step, yhat, "
                "last_ts, last_value) SELECT %s, model_version_id, series_id, series_version_id, ts, step, yhat, "
                "last_ts, last_value FROM forecasts WHERE run_id = %s AND model_version_id = %s AND series_id = %s",
                params)
            conn.execute(
                "INSERT INTO forecast_intervals (run_id, model_version_id, series_id, ts, level, lo, hi) "
                "SELECT %s, model_version_id, series_id, ts, level, lo, hi FROM forecast_intervals "
                "WHERE run_id = %s AND model_version_id = %s AND series_id = %s", params)
            conn.execute(
                "INSERT INTO forecast_explanations (run_id, model_version_id, series_id, ts, rank, feature, "
                "feature_value, shap_value, base_value) SELECT %s, model_version_id, series_id, ts, rank, feature, "
                "feature_value, shap_value, base_value FROM forecast_explanations "
                "WHERE run_id = %s AND model_version_id = %s AND series_id = %s", params)
            copied.append(series_id)
    return copied


def feature_importance_write(conn: psycopg.Connection, *, model_version_id: int, frame: pd.DataFrame) -> int:
    """``frame``: feature, mean_abs_shap, gain."""
    with conn.transaction():
        conn.execute("DELETE FROM feature_importance WHERE model_version_id = %s", (model_version_id,))
        return _copy(conn, "feature_importance", ["model_version_id", "feature", "mean_abs_shap", "gain"],
                     frame.assign(model_version_id=model_version_id))
