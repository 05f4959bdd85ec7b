"""One step of one partition by name: the CLI's composer and the Airflow tasks both go through here."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

__all__ = ["PARTITION_STEPS", "run_partition_step"]

PARTITION_STEPS = ("features", "backtest", "train", "predict")


def run_partition_step(conn: psycopg.Connection, step: str, *, run_id: int, key: str, force: bool = False,
                       progress: Callable[[str], None] | None = None) -> dict:
    """Run ``step`` over partition ``key`` of run ``run_id``; ``force`` retrains (train only); ``progress`` is
    called once per model (fit, for the backtest).

    The worker processes the per-series models fit on live as long as the step: they are reused across its
    backtest windows and models and stopped when it ends, so the process running it can exit at once.
    """
    from forecasting.models.parallel import worker_processes

    with worker_processes():
        return _run(conn, step, run_id=run_id, key=key, force=force, progress=progress)


def _run(conn: psycopg.Connection, step: str, *, run_id: int, key: str, force: bool,
         progress: Callable[[str], None] | None) -> dict:
    if step == "features":
        from forecasting.steps.features import features_partition

        return features_partition(conn, run_id=run_id, key=key)
    if step == "backtest":
        from forecasting.steps.backtest import backtest_partition

        return backtest_partition(conn, run_id=run_id, key=key, progress=progress)
    if step == "train":
        from forecasting.steps.train import train_partition

        return train_partition(conn, run_id=run_id, key=key, force=force, progress=progress)
    if step == "predict":
        from forecasting.steps.predict import predict_partition

        return predict_partition(conn, run_id=run_id, key=key, progress=progress)
    raise ValueError(f"unknown step {step!r}; partition steps: {', '.join(PARTITION_STEPS)}")
