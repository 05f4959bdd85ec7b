"""Fitting per-series models on several cores: series are split into one chunk per process.

Statistical models fit one series at a time in Python and statsmodels, so threads do not help (the GIL, and
``warnings.catch_warnings`` is process-global); processes do. joblib's loky pool keeps its workers alive between
calls, so a backtest that fits a model once per window pays the start-up (importing statsmodels) only once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["map_chunks", "resolve_n_jobs"]

_log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Below this many items a process pool costs more (pickling, waking workers) than it saves.
_MIN_PARALLEL_ITEMS = 16


def resolve_n_jobs(n_jobs: int | None) -> int:
    """None or a value < 1 means every core this process may use."""
    if n_jobs is not None and n_jobs >= 1:
        return int(n_jobs)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def map_chunks(func: Callable[[Sequence[T], Any], list[R]], items: Sequence[T], context: Any, *,
               n_jobs: int | None) -> list[R]:
    """``func(chunk, context)`` over contiguous chunks of ``items``, in order; results concatenated.

    ``func`` must be a module-level function and ``context`` picklable when more than one process is used.
    """
    jobs = min(resolve_n_jobs(n_jobs), len(items))
    if jobs <= 1 or len(items) < _MIN_PARALLEL_ITEMS:
        return func(items, context)
    from joblib import Parallel, delayed

    # a few chunks per worker evens out series of very different lengths
    n_chunks = min(len(items), jobs * 4)
    bounds = [round(i * len(items) / n_chunks) for i in range(n_chunks + 1)]
    chunks = [items[bounds[i]:bounds[i + 1]] for i in range(n_chunks)]
    _log.debug("fitting %d items in %d chunks on %d processes", len(items), n_chunks, jobs)
    parts = Parallel(n_jobs=jobs, backend="loky")(delayed(func)(chunk, context) for chunk in chunks)
    return [result for part in parts for result in part]
