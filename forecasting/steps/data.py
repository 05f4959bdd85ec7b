"""The inputs of a step over one partition, read from the store by (run id, partition key)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import pandas as pd
import psycopg

from forecasting.backtesting.backtest import BacktestSpec
from forecasting.config import PipelineConfig, parse_config
from forecasting.errors import ForecastingError
from forecasting.features.panel import fill_gaps
from forecasting.frequency import Frequency
from forecasting.steps.screen import backtest_spec, screen_series
from forecasting.store.results import pipeline_run_config
from forecasting.store.selectors import StoredSeries, panel_read, stored_series, stored_series_by_id
from forecasting.store.steps import Skip, model_skipped_series, partition_read, skipped_series_ids

__all__ = ["PartitionData", "load_partition", "run_config"]

_log = logging.getLogger(__name__)


@dataclass
class PartitionData:
    run_id: int
    key: str
    frequency: Frequency                    # the partition's frequency, parsed once
    config: PipelineConfig
    targets: dict[int, StoredSeries]        # every stored target of the partition, by series id
    panel: pd.DataFrame                     # the targets this step models (series = series id), gaps filled
    exog: pd.DataFrame | None               # feature series (series = name: they name feature columns)
    features: dict[str, StoredSeries]
    spec: BacktestSpec                      # the partition's backtest, "auto" windows resolved
    # targets this step's screening left out that no other step of the run had skipped yet: the step records them
    skips: list[Skip] = field(default_factory=list)

    @property
    def freq(self) -> str:
        return self.frequency.alias

    @property
    def n_windows(self) -> int:
        return self.spec.n_windows

    @property
    def series_ids(self) -> list[int]:
        return sorted(self.panel["series"].unique().tolist())

    @property
    def has_exog(self) -> bool:
        return self.exog is not None

    def lengths(self) -> pd.Series:
        """Points per series of ``panel``."""
        return self.panel.groupby("series", sort=True).size()

    def panel_for(self, model: str) -> pd.DataFrame:
        """The series of ``panel`` that ``model`` fits and forecasts (``BacktestSpec.series_models``)."""
        lengths = self.lengths()
        kept = self.spec.series_models(lengths, self.config.models.enabled)[model]
        if len(kept) == len(lengths):
            return self.panel
        return self.panel[self.panel["series"].isin(kept)].reset_index(drop=True)


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
    frequency = Frequency.parse(freq)
    targets = stored_series_by_id(conn, series_ids=series_ids, run_id=run_id)
    config = config or run_config(conn, run_id, target_names=[s.name for s in targets.values()])
    panel = panel_read(conn, series_ids=list(targets), pinned=targets)
    if config.preprocessing.missing_timestamps == "ffill":
        panel, filled = fill_gaps(panel, freq)
        for series_id, count in filled.items():
            _log.info("series %s: %d missing %s timestamp(s) forward-filled", targets[series_id].name, count, freq)
    panel, skips = screen_series(panel, config, frequency)
    # before this run's other skips are removed, so every step resolves "auto" from the same panel
    spec = backtest_spec(config, frequency, panel.groupby("series").size())
    if config.backtest.n_windows == "auto":
        _log.info("%s (%s): %d backtest window(s), auto from the lengths of its %d screened series", key, step,
                  spec.n_windows, panel["series"].nunique())
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
    # per model, the series the features step left out for that model only (features it cannot compute)
    excluded = model_skipped_series(conn, run_id=run_id, partition_key=key, step="features")
    spec = dataclasses.replace(spec, excluded={m: frozenset(ids) for m, ids in excluded.items()})
    return PartitionData(run_id, key, frequency, config, targets, panel, exog, features, spec, skips)
