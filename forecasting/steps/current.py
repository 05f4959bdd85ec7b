"""Whether each partition of a config has current models: what a training run now would register is already
registered, so training now would fit nothing new and choose its champions on the same backtest.

The Airflow ingest DAG asks this after every ingest (``forecasting.orchestration.training_needed``) and emits the
data Asset, which starts the train DAG, when some partition lacks current models, whether or not that ingest
changed anything: a fresh Airflow on a database the CLI filled, a config or code that changed since the last
training, a training that failed. Deciding reads stored versions, run records and fingerprints only: no series'
data is loaded and no model is fitted.

A partition's models are current when its newest successful training (the one prediction uses,
``latest_trained_models``):

1. planned the same series for it;
2. pinned the same data (``pipeline_run_data``): for each of its targets and every feature series, the version and
   row count stored now;
3. ran with the same horizon, preprocessing and backtest settings and the same enabled models, in the same order
   (the champions are chosen among them on that backtest) and the same code;
4. registered, for every enabled model, a version whose fingerprint (``forecasting.steps.train.fingerprint``: what
   the model's constructor receives, gap handling, partition, data versions, code) is the one training would
   compute now. A model that training registered no version of (it failed, or no series was long enough for it)
   counts as current while its settings are those of that training: the same inputs would do the same again
   (trigger the train DAG to retry it).

With 1 and 2, screening (which depends only on the data and the settings) keeps the same series, so the fingerprint
over the series a registered version was fitted on, at their current versions, is the one training would compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from forecasting.config import PipelineConfig, parse_config
from forecasting.errors import StoreError
from forecasting.frequency import Frequency
from forecasting.models.ensemble import combines_members
from forecasting.models.registry import model_settings
from forecasting.steps.partitions import Partition, split_partitions
from forecasting.steps.plan import planned_targets, run_settings
from forecasting.steps.train import fingerprint_of
from forecasting.store.registry import model_version_lineage
from forecasting.store.selectors import StoredSeries, stored_series, stored_series_by_id
from forecasting.store.steps import latest_trained_models, partition_read
from forecasting.version import code_version

__all__ = ["PartitionModels", "model_currency", "models_missing"]

# the settings a training run reads besides each model's own (those are in its fingerprint): the backtest that
# chooses the champions, and the preprocessing (horizon, gap handling) it and the screening use
_RUN_SETTINGS = ("preprocessing", "backtest")


@dataclass(frozen=True)
class PartitionModels:
    """One partition of the config as a training run now would plan it, and whether its models are current."""

    key: str
    label: str
    train_run: int | None            # its newest successful training (the models prediction uses), if any
    missing: tuple[str, ...] = ()    # why its models are not current; empty when they are

    @property
    def current(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        if self.current:
            return f"{self.key}: current (the models of run {self.train_run})"
        return f"{self.key}: " + "; ".join(self.missing)


@dataclass
class _Run:
    """A training run as recorded: its config (parsed only when needed) and code version."""

    raw: dict
    code: str
    _config: PipelineConfig | None = None

    @property
    def config(self) -> PipelineConfig:
        if self._config is None:
            self._config = parse_config(self.raw, origin="its last training")
        return self._config


@dataclass
class _Now:
    """The config, data and code a training run would use now."""

    config: PipelineConfig
    raw: dict
    targets: dict[int, StoredSeries]       # by series id
    features: dict[str, StoredSeries]      # by name
    code: str
    settings: dict[str, dict] = field(default_factory=dict)

    @property
    def has_exog(self) -> bool:
        return bool(self.features)

    def model_settings(self, name: str) -> dict:
        if name not in self.settings:
            self.settings[name] = model_settings(name, self.config, has_exog=self.has_exog)
        return self.settings[name]


def model_currency(conn: psycopg.Connection, config: PipelineConfig) -> list[PartitionModels]:
    """Every partition a training run of ``config`` would plan now, each saying whether its models are current and,
    if not, why. Empty when no stored target can be modelled (a run would be refused)."""
    config = run_settings(conn, config, command="train")
    raw = config.model_dump(mode="json")
    config = parse_config(raw, origin=f"{config.name} (as a training run records it)")  # what its steps read
    stored = stored_series(conn, keys=[(s.source, s.name) for s in config.series])
    targets = {s.name: stored[s.name] for s in config.series_with_role("target") if s.name in stored}
    features = {s.name: stored[s.name] for s in config.series_with_role("feature") if s.name in stored}
    planned, _ = planned_targets(config, targets)
    if not planned:
        return []
    now = _Now(config, raw, {s.series_id: s for s in targets.values()}, features, code_version())
    runs: dict[int, _Run] = {}
    return [_partition(conn, now, partition, runs)
            for partition in split_partitions(planned, config.modeling.partition_size)]


def models_missing(conn: psycopg.Connection, config: PipelineConfig) -> list[str]:
    """Keys of the partitions of ``config`` that lack current models (``model_currency``)."""
    return [p.key for p in model_currency(conn, config) if not p.current]


def _partition(conn: psycopg.Connection, now: _Now, partition: Partition, runs: dict[int, _Run]) -> PartitionModels:
    key, config = partition.key, now.config
    run_id, trained = latest_trained_models(conn, config_name=config.name, partition_key=key)
    if run_id is None:
        return PartitionModels(key, partition.label, None, ("no training of this partition has succeeded yet",))

    def missing(*reasons: str) -> PartitionModels:
        return PartitionModels(key, partition.label, run_id, reasons)

    planned = partition_read(conn, run_id=run_id, key=key)
    if planned is None or set(planned[3]) != set(partition.series_ids):
        return missing(f"its series are not those its last training (run {run_id}) had in it")
    try:
        pinned = stored_series_by_id(conn, series_ids=list(partition.series_ids), run_id=run_id)
        pinned_features = stored_series(conn, keys=[(s.source, s.name) for s in config.series_with_role("feature")],
                                        run_id=run_id)
    except StoreError as exc:  # a run planned before runs pinned their data: what it read is unknown
        return missing(f"its last training (run {run_id}): {exc}")
    changed = [now.targets[i].name for i in partition.series_ids if _version(pinned.get(i)) != _version(now.targets[i])]
    changed += [name for name in sorted(set(now.features) | set(pinned_features))
                if _version(now.features.get(name)) != _version(pinned_features.get(name))]
    if run_id not in runs:
        row = conn.execute("SELECT config, code_version FROM pipeline_runs WHERE run_id = %s", (run_id,)).fetchone()
        runs[run_id] = _Run(row[0], row[1])
    run = runs[run_id]
    reasons = []
    if changed:
        reasons.append(f"data stored since its last training (run {run_id}): " + _some(changed))
    differences = [d for section in _RUN_SETTINGS
                   for d in _differences(run.raw.get(section), now.raw[section], section)]
    differences += _differences(run.raw["models"]["enabled"], now.raw["models"]["enabled"], "models.enabled")
    if differences:
        reasons.append(f"settings differ from its last training's (run {run_id}): " + _some(differences))
    if run.code != now.code:
        reasons.append(f"code differs from its last training's (run {run_id}: {run.code}, now {now.code})")
    if reasons:
        return missing(*reasons)
    stale = _stale_models(conn, now, partition, trained, run)
    if stale:
        return missing(f"no version registered by its last training (run {run_id}) has the fingerprint of "
                       f"{', '.join(stale)} now (the settings its constructor receives changed)")
    return PartitionModels(key, partition.label, run_id)


def _stale_models(conn: psycopg.Connection, now: _Now, partition: Partition, trained: dict[str, int],
                  run: _Run) -> list[str]:
    """The enabled models whose registered version's fingerprint is not the one training would compute now."""
    lineage = model_version_lineage(conn, model_version_ids=list(trained.values()))
    freq = Frequency.parse(partition.freq).alias
    features = [(s.version_id, s.row_count) for s in now.features.values()]
    stale = []
    for name in now.config.models.enabled:
        if name in trained:
            registered, series_ids, recorded = lineage[trained[name]]
            if any(i not in now.targets for i in series_ids):
                stale.append(name)
                continue
            data = [(now.targets[i].version_id, now.targets[i].row_count) for i in series_ids] + features
            # an ensemble whose members the backtest chose: the choice follows from the data, settings and code
            # checked above, so its recorded settings are what training would compute now
            settings = recorded if name == "ensemble" and combines_members(now.config) else now.model_settings(name)
            computed = fingerprint_of(name, settings=settings,
                                      missing_timestamps=now.config.preprocessing.missing_timestamps, freq=freq,
                                      key=partition.key, data=data, code=now.code)
            if computed != registered:
                stale.append(name)
        else:  # that training registered none (it failed, or no series was long enough): the same inputs would too
            if model_settings(name, run.config, has_exog=now.has_exog) != now.model_settings(name):
                stale.append(name)
    return stale


def _version(series: StoredSeries | None) -> tuple[int, int] | None:
    return None if series is None else (series.version_id, series.row_count)


def _differences(before, after, path: str) -> list[str]:
    """``path.key: before -> after`` for each leaf that differs."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [d for k in sorted(set(before) | set(after))
                for d in _differences(before.get(k), after.get(k), f"{path}.{k}")]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def _some(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
