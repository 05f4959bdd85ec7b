"""Hyperparameter search results: every trial of a 'tune' run, and the chosen parameters per (config, model)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
import psycopg

from forecasting.store.jsonsafe import json_dumps

__all__ = ["tuned_parameters_read", "tuned_parameters_write", "tuning_trial_insert", "tuning_trials_read"]


def tuning_trial_insert(conn: psycopg.Connection, *, run_id: int, model: str, trial: int, params: dict,
                        target_lags: Sequence[int] | None, metric: str, score: float | None, metrics: dict,
                        cutoffs: Sequence[str], n_forecasts: int, seconds: float, error: str | None) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO tuning_trials (run_id, model, trial, params, target_lags, metric, score, metrics, cutoffs, "
            "n_forecasts, seconds, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, model, trial, json_dumps(params), json.dumps(list(target_lags)) if target_lags else None,
             metric, score, json_dumps(metrics), json.dumps(list(cutoffs)), n_forecasts, seconds, error),
        )


def tuning_trials_read(conn: psycopg.Connection, *, run_id: int) -> pd.DataFrame:
    """The run's trials, best first per model (failed trials last)."""
    rows = conn.execute(
        "SELECT model, trial, params, target_lags, metric, score, metrics, cutoffs, n_forecasts, seconds, error "
        "FROM tuning_trials WHERE run_id = %s ORDER BY model, score ASC NULLS LAST, trial", (run_id,),
    ).fetchall()
    return pd.DataFrame(rows, columns=["model", "trial", "params", "target_lags", "metric", "score", "metrics",
                                       "cutoffs", "n_forecasts", "seconds", "error"])


def tuned_parameters_write(conn: psycopg.Connection, *, config_name: str, model: str, run_id: int,
                           trial: int) -> None:
    """Make trial ``trial`` of ``run_id`` the parameters ``model`` of ``config_name`` is trained with."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO tuned_parameters (config_name, model, params, target_lags, metric, score, run_id, trial) "
            "SELECT %s, model, params, target_lags, metric, score, run_id, trial FROM tuning_trials "
            "WHERE run_id = %s AND model = %s AND trial = %s AND score IS NOT NULL "
            "ON CONFLICT (config_name, model) DO UPDATE SET params = EXCLUDED.params, "
            "target_lags = EXCLUDED.target_lags, metric = EXCLUDED.metric, score = EXCLUDED.score, "
            "run_id = EXCLUDED.run_id, trial = EXCLUDED.trial, tuned_at = now()",
            (config_name, run_id, model, trial),
        )


def tuned_parameters_read(conn: psycopg.Connection, *, config_name: str) -> dict[str, dict]:
    """model -> {params, target_lags, tune_run_id, trial} of the parameters chosen for ``config_name``."""
    rows = conn.execute(
        "SELECT model, params, target_lags, run_id, trial FROM tuned_parameters WHERE config_name = %s",
        (config_name,),
    ).fetchall()
    return {model: {"params": params, "target_lags": lags, "tune_run_id": run_id, "trial": trial}
            for model, params, lags, run_id, trial in rows}
