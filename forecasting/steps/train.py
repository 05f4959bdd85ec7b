"""Step ``train``: fit and register every enabled model on one partition.

Global models are fitted once on the partition, local ones series by series inside it. A model whose
fingerprint (its settings, the partition, the exact data versions, the code) is already registered is
reused, not refitted. The horizon is not part of the fingerprint: prediction takes it as an argument.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from forecasting.features.panel import TS
from forecasting.models.base import Forecaster
from forecasting.models.ensemble import EnsembleForecaster, combines_members
from forecasting.models.registry import build_model, model_class, model_settings
from forecasting.steps.data import PartitionData, load_partition
from forecasting.steps.record import recorded
from forecasting.store.jsonsafe import json_safe
from forecasting.store.registry import (
    DataVersion,
    fingerprint_lock,
    model_id_ensure,
    model_version_find,
    model_version_insert,
    model_version_load,
    model_version_registered_by,
)
from forecasting.store.results import backtest_metrics_partition, champions_set_versions
from forecasting.store.steps import Skip, partition_models_write, skips_write, step_summary
from forecasting.version import code_version

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

__all__ = ["fingerprint", "fingerprint_of", "train_partition"]

_log = logging.getLogger(__name__)


def train_partition(conn: psycopg.Connection, *, run_id: int, key: str, force: bool = False,
                    progress: Callable[[str], None] | None = None) -> dict:
    return recorded(conn, run_id=run_id, step="train", key=key,
                    work=lambda: _train(conn, run_id, key, force, progress))


def fingerprint(name: str, data: PartitionData, code: str, *, config: PipelineConfig | None = None) -> str:
    """What a fitted model depends on: its settings (of ``config``, default the partition's), gap handling, the
    partition and its data versions, code."""
    return fingerprint_of(name, settings=model_settings(name, config or data.config, has_exog=data.has_exog),
                          missing_timestamps=data.config.preprocessing.missing_timestamps, freq=data.freq,
                          key=data.key, data=[(d.series_version_id, d.row_count) for d in _data_versions(data)],
                          code=code)


def fingerprint_of(name: str, *, settings: dict, missing_timestamps: str, freq: str, key: str,
                   data: list[tuple[int, int]], code: str) -> str:
    """The fingerprint from its parts: ``settings`` (``model_settings``), the partition's frequency alias and key,
    ``data`` the (series version id, row count) of every target and feature series the model is fitted on, ``code``
    (``code_version``). ``forecasting.steps.current`` computes it without loading the data."""
    payload = {"model": name, "settings": settings, "missing_timestamps": missing_timestamps, "freq": freq,
               "partition": key, "data": sorted(data), "code": code}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _data_versions(data: PartitionData) -> list[DataVersion]:
    return ([DataVersion(data.targets[i].version_id, "target", data.targets[i].row_count, data.targets[i].last_ts)
             for i in data.series_ids]
            + [DataVersion(s.version_id, "feature", s.row_count, s.last_ts) for s in data.features.values()])


def _train(conn: psycopg.Connection, run_id: int, key: str, force: bool, progress) -> dict:
    data = load_partition(conn, run_id=run_id, key=key, step="train")
    skips = list(data.skips)
    summary: dict = {"key": key, "n_series": len(data.series_ids), "trained": [], "reused": [], "failed": {}}
    if data.panel.empty:
        skips_write(conn, run_id=run_id, step="train", partition_key=key, skips=skips)
        partition_models_write(conn, run_id=run_id, partition_key=key, versions={})
        return summary
    code = code_version()
    metrics = backtest_metrics_partition(conn, run_id=run_id, series_ids=data.series_ids)
    version_ids: dict[str, int] = {}
    fitted: dict[str, Forecaster] = {}
    combined = combines_members(data.config)
    enabled = data.config.models.enabled
    for name in [m for m in enabled if m != "ensemble"] + [m for m in enabled if m == "ensemble"]:
        if progress is not None:
            progress(name)
        config = data.config
        if name == "ensemble" and combined:
            config = _with_ensemble_choice(conn, run_id, data)
            if config is None:
                summary["failed"][name] = "the backtest chose no ensemble (no member had forecasts)"
                skips += [Skip(i, f"training failed: {summary['failed'][name]}", model=name) for i in data.series_ids]
                continue
        model_id = model_id_ensure(conn, config_name=data.config.name, name=name, frequency=data.freq,
                                   partition_key=key)
        fp = fingerprint(name, data, code, config=config)
        with fingerprint_lock(conn, fp):  # a concurrent run of this fingerprint waits, then reuses
            existing = None if force else model_version_find(conn, model_id=model_id, fingerprint=fp)
            if existing is not None:
                version_ids[name] = existing
                continue
            panel = data.panel_for(name)
            if panel.empty:  # every series is too short for it (the backtest step recorded why)
                continue
            try:
                if name == "ensemble" and combined:  # its members are fitted already: combine them, do not refit
                    settings = EnsembleForecaster.settings(config)
                    model = EnsembleForecaster.of_fitted(
                        {m: _member(conn, m, fitted, version_ids) for m in settings.members}, how=settings.how)
                else:
                    model = build_model(name, config, has_exog=data.has_exog).fit(panel, freq=data.freq, exog=data.exog)
            except Exception as exc:  # one model failing costs only that model
                _log.exception("%s: training %s failed", key, name)
                summary["failed"][name] = f"{type(exc).__name__}: {exc}"
                skips += [Skip(i, f"training failed: {type(exc).__name__}: {exc}", model=name) for i in data.series_ids]
                continue
            fitted[name] = model
            version_id = model_version_insert(
                conn, model_id=model_id, run_id=run_id, fingerprint=fp, model=model,
                params={"model": model_settings(name, config, has_exog=data.has_exog), "kind": model_class(name).kind,
                        "seed": data.config.models.seed},
                features=list(getattr(model, "feature_names_", [])),
                training_start=panel[TS].min(), training_end=panel[TS].max(),
                fitted=json_safe({"fallbacks": model.fallbacks, "params": getattr(model, "params_", None)}),
                data=_data_versions(data), code_version=code, metrics=metrics.get(name),
                artifact_dir=_artifact_dir(data), reuse_existing=not force,
            )
            version_ids[name] = version_id
    # reused: another run registered the version (a concurrent run fitting it held the fingerprint's lock until it
    # was registered, so it is found before fitting); a retried step's own version is not reuse
    registered_by = model_version_registered_by(conn, model_version_ids=list(version_ids.values()))
    versions = {name: (vid, registered_by[vid] != run_id) for name, vid in version_ids.items()}
    for name, (_, reused) in versions.items():
        summary["reused" if reused else "trained"].append(name)
    partition_models_write(conn, run_id=run_id, partition_key=key, versions=versions)
    champions_set_versions(conn, run_id=run_id, series_ids=data.series_ids,
                           versions={name: vid for name, (vid, _) in versions.items()})
    skips_write(conn, run_id=run_id, step="train", partition_key=key, skips=skips)
    summary["model_versions"] = {name: vid for name, (vid, _) in versions.items()}
    _log.info("%s: trained %s; reused %s; failed %s", key, ", ".join(summary["trained"]) or "none",
              ", ".join(summary["reused"]) or "none", ", ".join(summary["failed"]) or "none")
    if not versions:
        raise RuntimeError(f"partition {key}: every model failed to train: {summary['failed']}")
    return summary


def _with_ensemble_choice(conn: psycopg.Connection, run_id: int, data: PartitionData) -> PipelineConfig | None:
    """The partition's config with the members and combination its backtest chose for the ensemble (so they are
    part of the ensemble's settings and fingerprint); None when the backtest recorded no choice."""
    summary = step_summary(conn, run_id=run_id, step="backtest", partition_key=data.key) or {}
    chosen = summary.get("ensemble")
    if not chosen or not chosen.get("members"):
        return None
    ensemble = EnsembleForecaster.settings(data.config).model_copy(
        update={"members": list(chosen["members"]), "how": chosen["how"]})
    models = data.config.models.model_copy(update={EnsembleForecaster.settings_key: ensemble})
    return data.config.model_copy(update={"models": models})


def _member(conn: psycopg.Connection, name: str, fitted: dict[str, Forecaster],
            version_ids: dict[str, int]) -> Forecaster:
    """A member of the ensemble as this training has it: fitted just now, or the registered version it reused."""
    if name in fitted:
        return fitted[name]
    if name in version_ids:
        return model_version_load(conn, version_ids[name])
    raise RuntimeError(f"ensemble member {name} has no trained model version in this partition")


def _artifact_dir(data: PartitionData) -> Path | None:
    folder = data.config.prediction.artifact_dir
    return Path(folder).expanduser() if folder else None
