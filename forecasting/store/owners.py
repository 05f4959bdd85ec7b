"""Runs owned by one process: who owns a run, and marking the runs whose owner died as abandoned."""

from __future__ import annotations

import logging
import os
import socket

import psycopg

__all__ = ["current_owner", "reap_abandoned_runs"]

_log = logging.getLogger(__name__)

_TABLES = {"pipeline_runs": "run_id", "ingest_runs": "ingest_run_id"}  # names from this module only


def current_owner() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def reap_abandoned_runs(conn: psycopg.Connection) -> list[tuple[str, int]]:
    """Mark this host's running runs whose owner process is gone as 'abandoned', and the steps of such a pipeline
    run that were still 'running' with it; returns (table, id) of each run.

    A reused pid keeps a dead run 'running' until that process ends too: the safe direction.
    """
    host, me = current_owner()
    reaped = []
    for table, key in _TABLES.items():
        rows = conn.execute(f"SELECT {key}, owner_pid FROM {table} WHERE status = 'running' AND owner_host = %s "
                            "AND owner_pid IS NOT NULL", (host,)).fetchall()
        for run_id, pid in rows:
            if pid == me or _alive(pid):
                continue
            reason = f"abandoned: its process {pid} on {host} ended without finishing the run (killed?)"
            with conn.transaction():
                conn.execute(f"UPDATE {table} SET status = 'abandoned', error = %s, finished_at = now() "
                             f"WHERE {key} = %s AND status = 'running'", (reason, run_id))
                if table == "pipeline_runs":  # the step the process was in died with it
                    conn.execute("UPDATE run_steps SET status = 'abandoned', error = %s, finished_at = now() "
                                 "WHERE run_id = %s AND status = 'running'", (reason, run_id))
            _log.warning("%s %d %s", table, run_id, reason)
            reaped.append((table, run_id))
    return reaped
