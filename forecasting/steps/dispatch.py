"""One step of one partition by name: the CLI's composer and the Airflow tasks both go through here."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from forecasting.steps.table import STEPS

__all__ = ["run_partition_step"]


def run_partition_step(conn: psycopg.Connection, step: str, *, run_id: int, key: str, force: bool = False,
                       progress: Callable[[str], None] | None = None) -> dict:
    """Run ``step`` (``forecasting.steps.table``) over partition ``key`` of run ``run_id``, or over the whole run
    for a run-scoped step; ``force`` retrains (train only); ``progress`` is called once per model."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    return STEPS[step].run(conn, run_id=run_id, key=key, force=force, progress=progress)
