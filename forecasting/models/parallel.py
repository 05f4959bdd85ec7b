"""Fitting per-series models on several cores: series are split into chunks, fitted in worker processes.

Statistical models fit one series at a time in Python and statsmodels, so threads do not help (the GIL, and
``warnings.catch_warnings`` is process-global); processes do. The worker processes are kept between calls, so a
backtest that fits a model once per window pays their start-up (importing statsmodels) only once, and they are
stopped by ``shutdown_workers`` (every partition step calls it when it ends, ``worker_processes`` is the block
form) or when the process exits: they never keep a finished step's process waiting for an idle timeout.

How many processes (``resolve_n_jobs``): ``modeling.n_jobs`` when set; otherwise the cores this process may use
divided by the number of tasks that may run at once on the machine, ``FORECASTING_TASK_SLOTS`` (default 1; the
Airflow tasks set it from the executor's concurrency, see ``forecasting.orchestration``), at least 1. So two
Celery slots on a 2-core worker fit series in one process each instead of four processes on two cores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["TASK_SLOTS_ENV", "map_chunks", "resolve_n_jobs", "shutdown_workers", "task_slots", "worker_processes"]

_log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

TASK_SLOTS_ENV = "FORECASTING_TASK_SLOTS"

# Below this many items a process pool costs more (pickling, waking workers) than it saves.
_MIN_PARALLEL_ITEMS = 16

_pool: tuple[int, Any] | None = None  # (processes, loky executor) while workers are alive
_exit_hook = False


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def task_slots() -> int:
    """How many tasks may run at once on this machine: ``$FORECASTING_TASK_SLOTS``, default 1."""
    raw = os.environ.get(TASK_SLOTS_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{TASK_SLOTS_ENV} must be a whole number >= 1, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{TASK_SLOTS_ENV} must be a whole number >= 1, got {raw!r}")
    return value


def resolve_n_jobs(n_jobs: int | None) -> int:
    """``n_jobs`` when >= 1; None (or < 1) means this task's share of the cores: cores // task slots, >= 1."""
    if n_jobs is not None and n_jobs >= 1:
        return int(n_jobs)
    return max(1, _usable_cores() // task_slots())


def _executor(jobs: int):
    global _pool
    if _pool is not None and _pool[0] != jobs:
        shutdown_workers()
    if _pool is None:
        from multiprocessing import util

        from joblib.externals.loky import ProcessPoolExecutor

        # tiny matrices: BLAS and OpenMP threads in the workers would only contend with the other processes
        env = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        _pool = (jobs, ProcessPoolExecutor(max_workers=jobs, env=env))
        global _exit_hook
        if not _exit_hook:
            # also stopped when this process exits, before multiprocessing joins its children (a process that
            # multiprocessing started, such as a spawned task, would otherwise wait for them)
            util.Finalize(None, shutdown_workers, exitpriority=100)
            _exit_hook = True
        _log.debug("started %d worker processes", jobs)
    return _pool[1]


def shutdown_workers() -> None:
    """Stop the worker processes, if any; the next ``map_chunks`` call starts new ones."""
    global _pool
    if _pool is None:
        return
    jobs, executor = _pool
    _pool = None
    executor.shutdown(wait=True, kill_workers=False)
    _log.debug("stopped %d worker processes", jobs)


@contextmanager
def worker_processes() -> Iterator[None]:
    """A block whose ``map_chunks`` calls share worker processes that are stopped when it ends."""
    try:
        yield
    finally:
        shutdown_workers()


def map_chunks(func: Callable[[Sequence[T], Any], list[R]], items: Sequence[T], context: Any, *,
               n_jobs: int | None) -> list[R]:
    """``func(chunk, context)`` over contiguous chunks of ``items``, in order; results concatenated.

    ``func`` must be a module-level function and ``context`` picklable when more than one process is used.
    """
    jobs = min(resolve_n_jobs(n_jobs), len(items))
    if jobs <= 1 or len(items) < _MIN_PARALLEL_ITEMS:
        return func(items, context)
    # a few chunks per worker evens out series of very different lengths
    n_chunks = min(len(items), jobs * 4)
    bounds = [round(i * len(items) / n_chunks) for i in range(n_chunks + 1)]
    chunks = [items[bounds[i]:bounds[i + 1]] for i in range(n_chunks)]
    _log.debug("fitting %d items in %d chunks on %d processes", len(items), n_chunks, jobs)
    executor = _executor(jobs)
    try:
        parts = list(executor.map(func, chunks, [context] * n_chunks))
    except BaseException:
        shutdown_workers()  # a broken or interrupted pool is not reused
        raise
    return [result for part in parts for result in part]
