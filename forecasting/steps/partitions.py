"""Partitions: the targets of one frequency split into groups of at most ``modeling.partition_size`` series.

A partition is the unit of every modeling step: one Airflow task per step, one set of global models, one
slice of memory. Assignment is by position in the config (stable while the config is unchanged), and the
series are spread evenly: 1,001 series with a size of 1,000 make two partitions of 501 and 500, not 1,000 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Partition", "split_partitions"]


@dataclass(frozen=True)
class Partition:
    freq: str
    part_no: int   # 1-based
    n_parts: int
    series_ids: tuple[int, ...]

    @property
    def key(self) -> str:
        """Stable identity of the partition: models are registered under it."""
        return f"{self.freq}:{self.part_no}/{self.n_parts}"

    @property
    def label(self) -> str:
        return f"{self.freq} partition {self.part_no} of {self.n_parts} ({len(self.series_ids)} series)"

    def task(self, run_id: int) -> dict:
        """What an Airflow task needs to find the partition in the store (small, JSON-able)."""
        return {"run_id": run_id, "key": self.key, "label": self.label, "freq": self.freq,
                "n_series": len(self.series_ids)}


def split_partitions(targets: Sequence[tuple[int, str]], size: int) -> list[Partition]:
    """Partitions of (series id, frequency) pairs given in config order; frequencies in sorted order."""
    if size < 1:
        raise ValueError(f"partition size must be at least 1, got {size}")
    by_freq: dict[str, list[int]] = {}
    for series_id, freq in targets:
        by_freq.setdefault(freq, []).append(int(series_id))
    partitions = []
    for freq in sorted(by_freq):
        ids = by_freq[freq]
        n_parts = math.ceil(len(ids) / size)
        base, extra = divmod(len(ids), n_parts)
        start = 0
        for k in range(n_parts):
            count = base + (1 if k < extra else 0)
            partitions.append(Partition(freq, k + 1, n_parts, tuple(ids[start:start + count])))
            start += count
    return partitions
