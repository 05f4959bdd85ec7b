"""The inputs of a step over one partition, read from the store by (run id, partition key)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd
import psycopg

from forecasting.config import PipelineConfig, parse_config
from forecasting.errors import ForecastingError
from forecasting.panel import fill_gaps
from forecasting.steps.screen import backtest_windows, screen_series
from forecasting.store.results import pipeline_run_config
from forecasting.store.selectors import StoredSeries, panel_read, stored_series, stored_series_by_id
from forecasting.store.steps import Skip, partition_read, skipped_series_ids

__all__ = ["PartitionData", "load_partition", "run_config"]

_log = logging.getLogger(__name__)


@dataclass
class PartitionData:
    run_id: int
    key: str
    freq: str
    config: PipelineConfig
    targets: dict[int, StoredSeries]        # every stored target of the partition, by series id
    panel: pd.DataFrame                     # the targets this step models (series = series id), gaps filled
    exog: pd.DataFrame | None               # feature series (series = name: they name feature columns)
    features: dict[str, StoredSeries]
    n_windows: int                          # backtest windows: the configured number, or "auto" resolved
    # targets this step's screening left out that no other step of the run had skipped yet: the step records them
    skips: list[Skip] = field(default_factory=list)

    @property
    def series_ids(self) -> list[int]:
        return sorted(self.panel["series"].unique().tolist())

    @property
    def has_exog(self) -> bool:
        return self.exog is not None


def run_config(conn: psycopg.Connection, run_id: int, *, target_names: list[str] | None = None) -> PipelineConfig:
    """The config a run was started with (trigger overrides included): every step of a run sees the same.

    ``target_names``: keep only these targets (and the feature series) in its series list, so a step's memory
    does not grow with the number of series in the run."""
    _, raw = pipeline_run_config(conn, run_id=run_id, series_names=target_names)
    return parse_config(raw, origin=f"pipeline run {run_id}")


def load_partition(conn: psycopg.Connection, *, run_id: int, key: str, step: str,
                   config: PipelineConfig | None = None) -> PartitionData:
    """The partition's pinned data for ``step``, screened: series that cannot be modelled, and series another
    step of this run already skipped, are not in ``panel``; ``skips`` holds the newly screened-out ones."""
    planned = partition_read(conn, run_id=run_id, key=key)
    if planned is None:
        raise ForecastingError(f"pipeline run {run_id} has no partition {key!r} (plan the run first)")
    freq, _, _, series_ids = planned
    targets = stored_series_by_id(conn, series_ids=series_ids, run_id=run_id)
    config = config or run_config(conn, run_id, target_names=[s.name for s in targets.values()])
    panel = panel_read(conn, series_ids=list(targets), pinned=targets)
    if config.preprocessing.missing_timestamps == "ffill":
        panel, filled = fill_gaps(panel, freq)
        for series_id, count in filled.items():
            _log.info("series %s: %d missing %s timestamp(s) forward-filled", targets[series_id].name, count, freq)
    panel, skips = screen_series(panel, config)
    # before this run's other skips are removed, so every step resolves "auto" from the same panel
    n_windows = backtest_windows(panel, config, freq)
    if config.backtest.n_windows == "auto":
        _log.info("%s (%s): %d backtest window(s), auto from the lengths of its %d screened series", key, step,
                  n_windows, panel["series"].nunique())
    already = skipped_series_ids(conn, run_id=run_id, partition_key=key, excluding_step=step)
    if already:
        panel = panel[~panel["series"].isin(already)].reset_index(drop=True)
        skips = [s for s in skips if s.series_id not in already]
    features = stored_series(conn, keys=[(s.source, s.name) for s in config.series_with_role("feature")],
                             run_id=run_id)
    exog = None
    if features:
        exog = panel_read(conn, series_ids=[s.series_id for s in features.values()],
                          keys={s.series_id: s.name for s in features.values()},
                          pinned={s.series_id: s for s in features.values()})
    return PartitionData(run_id, key, freq, config, targets, panel, exog, features, n_windows, skips)
