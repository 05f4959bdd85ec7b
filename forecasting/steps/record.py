"""Running a step under its row in ``run_steps``: status, seconds, summary, or the error that stopped it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from forecasting.store.steps import run_step_finish, run_step_start

__all__ = ["recorded"]

_log = logging.getLogger(__name__)


def recorded(conn: psycopg.Connection, *, run_id: int, step: str, key: str, work: Callable[[], dict]) -> dict:
    """Run ``work`` and record its outcome; its summary gains ``seconds``. An error is recorded and re-raised."""
    run_step_start(conn, run_id=run_id, step=step, partition_key=key)
    started = time.perf_counter()
    try:
        summary = work()
    except Exception as exc:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        run_step_finish(conn, run_id=run_id, step=step, partition_key=key, status="failed",
                        seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
        raise
    summary["seconds"] = round(time.perf_counter() - started, 3)
    run_step_finish(conn, run_id=run_id, step=step, partition_key=key, status="succeeded",
                    seconds=summary["seconds"], summary=summary)
    _log.info("run %d: %s %s took %.2f s", run_id, step, key or "(whole run)", summary["seconds"])
    return summary
