"""The modeling pipeline over stored series: backtest, choose champions, train and register, predict.

Targets are grouped by frequency (a global model learns from series of one frequency); the feature series
of the config are exogenous inputs of every group. Each step writes to PostgreSQL with the run id, the
model version and the exact series versions, so every number can be traced back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg

from forecasting import __version__
from forecasting.backtest import BacktestResult, run_backtest
from forecasting.config import PipelineConfig
from forecasting.errors import ForecastingError
from forecasting.evaluation import backtest_metrics, choose_champions
from forecasting.explain import explain_forecasts
from forecasting.intervals import apply_intervals, conformal_quantiles, series_scale
from forecasting.models import feature_spec, model_factories
from forecasting.panel import SERIES, STEP, TS, YHAT, Y, fill_gaps
from forecasting.store.registry import (
    DataVersion,
    model_id_ensure,
    model_version_find,
    model_version_insert,
    model_version_load,
    pipeline_run_data_insert,
)
from forecasting.store.results import (
    backtest_forecasts_write,
    backtest_metrics_write,
    champions_write,
    feature_importance_write,
    forecasts_copy_forward,
    forecasts_write,
)
from forecasting.store.selectors import StoredSeries, panel_first_known, panel_read, stored_series

__all__ = ["GroupData", "GroupReport", "code_version", "load_groups", "model_group"]

_log = logging.getLogger(__name__)

def code_version() -> str:
    """Package version plus the git commit of the source checkout, when there is one."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}"


@dataclass
class GroupData:
    freq: str
    panel: pd.DataFrame                 # targets of this frequency
    exog: pd.DataFrame | None           # feature series (any frequency)
    targets: dict[str, StoredSeries]
    features: dict[str, StoredSeries]


@dataclass
class GroupReport:
    freq: str
    champions: pd.DataFrame = field(default_factory=pd.DataFrame)   # series, model, score
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)      # model, series, metric means (latest)
    forecasts: pd.DataFrame = field(default_factory=pd.DataFrame)   # model, series, ts, step, yhat
    model_versions: dict[str, int] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    fallbacks: list[dict] = field(default_factory=list)
    inflation: pd.DataFrame = field(default_factory=pd.DataFrame)   # latest vs as_known per model


def load_groups(conn: psycopg.Connection, config: PipelineConfig) -> list[GroupData]:
    """Current data of the configured series, targets grouped by their stored frequency.

    Series never stored (their source has always failed) are left out with a warning, so one broken source
    cannot stop the forecasts of all the others; with no stored target at all there is nothing to do.
    """
    keys = [(s.source, s.name) for s in config.series]
    stored = stored_series(conn, keys=keys)
    missing = [name for _, name in keys if name not in stored]
    if missing:
        _log.warning("series not stored yet, left out of this run: %s", ", ".join(missing))
    targets_stored = [s for s in config.series_with_role("target") if s.name in stored]
    if not targets_stored:
        raise ForecastingError(f"no target series of {config.name!r} is stored yet (run ingest first)")
    features = {s.name: stored[s.name] for s in config.series_with_role("feature") if s.name in stored}
    exog = panel_read(conn, series=features) if features else None
    by_freq: dict[str, dict[str, StoredSeries]] = {}
    for spec in targets_stored:
        freq = spec.frequency or stored[spec.name].frequency
        if not freq:
            raise ForecastingError(f"series {spec.name!r}: unknown frequency; set 'frequency' in the config")
        by_freq.setdefault(freq, {})[spec.name] = stored[spec.name]
    groups = []
    for freq, targets in sorted(by_freq.items()):
        panel = panel_read(conn, series=targets)
        if config.preprocessing.missing_timestamps == "ffill":
            panel, filled = fill_gaps(panel, freq)
            for name, count in filled.items():
                _log.info("series %r: %d missing %s timestamp(s) forward-filled", name, count, freq)
        groups.append(GroupData(freq, panel, exog, targets, features))
    return groups


def _with_series_id(frame: pd.DataFrame, group: GroupData) -> pd.DataFrame:
    ids = {name: s.series_id for name, s in group.targets.items()}
    return frame.assign(series_id=frame[SERIES].map(ids).astype("int64"))


def _metrics_long(forecasts: pd.DataFrame, group: GroupData, levels: tuple[int, ...]) -> pd.DataFrame:
    long = backtest_metrics(forecasts, group.panel, freq=group.freq, levels=levels)
    ids = {name: s.series_id for name, s in group.targets.items()}
    long["series_id"] = long[SERIES].map(ids)
    return long.astype({"series_id": "Int64", STEP: "Int64"})


def _champions(metrics: pd.DataFrame, config: PipelineConfig) -> pd.DataFrame:
    return choose_champions(metrics, metric=config.backtest.champion_metric, model_order=config.models.enabled)


def _never_revised(conn, group: GroupData) -> bool:
    """True when every series is still on its first version: then the data first known at any origin is
    exactly today's data up to it, and an 'as_known' backtest would repeat the 'latest' one."""
    ids = [s.series_id for s in {**group.targets, **group.features}.values()]
    revised = conn.execute("SELECT count(*) FROM series_versions WHERE series_id = ANY(%s) AND version_no > 1",
                           (ids,)).fetchone()[0]
    return revised == 0


def _run_mode(conn, mode: str, config: PipelineConfig, group: GroupData, factories) -> BacktestResult:
    supplier = None
    if mode == "as_known":
        def supplier(fold):
            return panel_first_known(conn, series=group.targets, cutoff=fold.cutoff.to_pydatetime())
    settings = config.backtest
    return run_backtest(group.panel, factories, freq=group.freq, horizon=config.preprocessing.horizon,
                        n_windows=settings.n_windows, step=settings.step, refit=settings.refit, exog=group.exog,
                        panel_for_fold=supplier)


def _backtest(conn, run_id: int, config: PipelineConfig, group: GroupData, report: GroupReport) -> BacktestResult:
    factories = model_factories(config, has_exog=group.exog is not None)
    levels = tuple(config.prediction.levels)
    modes = sorted(config.backtest.modes, key=lambda m: m != "latest")  # latest first: as_known may reuse it
    results: dict[str, BacktestResult] = {}
    for mode in modes:
        if mode == "as_known" and "latest" in results and _never_revised(conn, group):
            _log.info("no series of %s was ever revised: the as_known backtest equals the latest one", group.freq)
            result = results["latest"]
        else:
            result = _run_mode(conn, mode, config, group, factories)
            report.failures += [{**f, "mode": mode} for f in result.failures]
            report.fallbacks += [{**f, "mode": mode} for f in result.fallbacks]
        results[mode] = result
        if result.forecasts.empty:
            continue
        backtest_forecasts_write(conn, run_id=run_id, mode=mode, frame=_with_series_id(result.forecasts, group))
        metrics = _metrics_long(result.forecasts, group, levels)
        backtest_metrics_write(conn, run_id=run_id, mode=mode, frame=metrics[
            ["model", "series_id", STEP, "metric", "value"]])
        overall = metrics[metrics[SERIES].isna() & metrics[STEP].isna()].assign(mode=mode)
        report.inflation = pd.concat([report.inflation, overall], ignore_index=True)
        if mode == "latest":
            report.champions = _champions(metrics, config)
            report.scores = metrics[metrics[SERIES].notna() & metrics[STEP].notna()].groupby(
                ["model", SERIES, "metric"], as_index=False)["value"].mean()
    return results.get("latest")


def _fingerprint(name: str, config: PipelineConfig, group: GroupData, code: str) -> str:
    data = sorted((s.version_id, s.row_count) for s in {**group.targets, **group.features}.values())
    payload = {"model": name, "models": config.models.model_dump(mode="json"),
               "preprocessing": config.preprocessing.model_dump(mode="json"), "freq": group.freq,
               "data": data, "code": code}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _data_versions(group: GroupData) -> list[DataVersion]:
    return ([DataVersion(s.version_id, "target", s.row_count, s.last_ts) for s in group.targets.values()]
            + [DataVersion(s.version_id, "feature", s.row_count, s.last_ts) for s in group.features.values()])


def _train(conn, run_id: int, config: PipelineConfig, group: GroupData, report: GroupReport, *, force: bool):
    """Fit (or reuse, when config, data and code are unchanged) every model; returns name -> (id, model)."""
    code = code_version()
    trained = {}
    artifact_dir = Path(config.prediction.artifact_dir).expanduser() if config.prediction.artifact_dir else None
    for name, factory in model_factories(config, has_exog=group.exog is not None).items():
        model_id = model_id_ensure(conn, config_name=config.name, name=name, frequency=group.freq)
        fingerprint = _fingerprint(name, config, group, code)
        existing = None if force else model_version_find(conn, model_id=model_id, fingerprint=fingerprint)
        try:
            if existing is not None:
                trained[name] = (existing, model_version_load(conn, existing))
                report.reused.append(name)
                continue
            model = factory().fit(group.panel, freq=group.freq, exog=group.exog)
        except Exception as exc:  # one model failing to train must not stop the others
            _log.exception("training %s failed", name)
            report.failures.append({"model": name, "step": "train", "error": f"{type(exc).__name__}: {exc}"})
            continue
        version_id = model_version_insert(
            conn, model_id=model_id, run_id=run_id, fingerprint=fingerprint, model=model,
            params=_model_params(name, config), features=list(getattr(model, "feature_names_", [])),
            training_start=group.panel[TS].min(), training_end=group.panel[TS].max(),
            fitted={"fallbacks": model.fallbacks, "params": getattr(model, "params_", None)},
            data=_data_versions(group), code_version=code, metrics=_model_metrics(report, name),
            artifact_dir=artifact_dir,
        )
        trained[name] = (version_id, model)
    report.model_versions = {name: vid for name, (vid, _) in trained.items()}
    return trained


def _model_metrics(report: GroupReport, name: str) -> dict | None:
    """{mode: {metric: value}} of this model's backtest in the current run, if one ran."""
    if report.inflation.empty:
        return None
    rows = report.inflation[report.inflation["model"] == name]
    return {mode: dict(zip(g["metric"], g["value"], strict=True)) for mode, g in rows.groupby("mode")} or None


def _model_params(name: str, config: PipelineConfig) -> dict:
    models = config.models.model_dump(mode="json")
    own = {"lightgbm_global": models["lightgbm"], "random_forest": models["random_forest"],
           "linear": models["linear"], "arima": models["arima"], "hybrid": {"arima": models["arima"],
                                                                            "lightgbm": models["lightgbm"]}}
    spec = feature_spec(config, has_exog=bool(config.series_with_role("feature")))
    return {"model": own.get(name, {}), "seed": models["seed"], "features": spec.__dict__,
            "target_transforms": config.preprocessing.target_transforms}


def _forecast_rows(predicted: pd.DataFrame, group: GroupData) -> pd.DataFrame:
    last = group.panel.groupby(SERIES, sort=True).tail(1).set_index(SERIES)
    out = _with_series_id(predicted, group)
    out["series_version_id"] = out[SERIES].map({n: s.version_id for n, s in group.targets.items()})
    out["last_ts"] = out[SERIES].map(last[TS])
    out["last_value"] = out[SERIES].map(last[Y])
    return out


def _predict(conn, run_id: int, config: PipelineConfig, group: GroupData, trained: dict,
             quantiles: pd.DataFrame, report: GroupReport) -> None:
    levels = tuple(config.prediction.levels)
    horizon = config.preprocessing.horizon
    scale = series_scale(group.panel)
    pieces = []
    for name, (version_id, model) in trained.items():
        if name in report.reused:
            ids = {s.series_id: s.version_id for s in group.targets.values()}
            if set(forecasts_copy_forward(conn, run_id=run_id, model_version_id=version_id,
                                          series_version_ids=ids)) == set(ids):
                pieces.append(_stored_forecasts(conn, run_id, version_id, name, group))
                continue
        try:
            predicted = model.predict(horizon).assign(model=name)
        except Exception as exc:
            _log.exception("prediction with %s failed", name)
            report.failures.append({"model": name, "step": "predict", "error": f"{type(exc).__name__}: {exc}"})
            continue
        intervals = _interval_rows(predicted, quantiles, scale, levels, group)
        explanations = None
        if config.prediction.explain_top_k and hasattr(model, "last_X_") and name == "lightgbm_global":
            explanations, importance = explain_forecasts(model, top_k=config.prediction.explain_top_k)
            explanations = _with_series_id(explanations, group)
            feature_importance_write(conn, model_version_id=version_id, frame=importance)
        forecasts_write(conn, run_id=run_id, model_version_id=version_id,
                        forecasts=_forecast_rows(predicted, group), intervals=intervals, explanations=explanations)
        pieces.append(predicted)
    report.forecasts = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def _interval_rows(predicted: pd.DataFrame, quantiles: pd.DataFrame, scale: pd.Series, levels: tuple[int, ...],
                   group: GroupData) -> pd.DataFrame:
    if quantiles.empty or not levels:
        return pd.DataFrame(columns=["series_id", TS, "level", "lo", "hi"])
    wide = apply_intervals(predicted, quantiles, scale, levels)
    rows = [wide[[SERIES, TS]].assign(level=lvl, lo=wide[f"lo_{lvl}"], hi=wide[f"hi_{lvl}"]) for lvl in levels]
    long = pd.concat(rows, ignore_index=True).dropna(subset=["lo", "hi"])
    return _with_series_id(long, group)


def _stored_forecasts(conn, run_id: int, version_id: int, name: str, group: GroupData) -> pd.DataFrame:
    names = {s.series_id: n for n, s in group.targets.items()}
    rows = conn.execute("SELECT series_id, ts, step, yhat FROM forecasts WHERE run_id = %s AND model_version_id = %s",
                        (run_id, version_id)).fetchall()
    frame = pd.DataFrame(rows, columns=["series_id", TS, STEP, YHAT])
    return frame.assign(**{SERIES: frame["series_id"].map(names), "model": name}).drop(columns="series_id")


def model_group(conn: psycopg.Connection, run_id: int, config: PipelineConfig, group: GroupData, *,
                steps: tuple[str, ...] = ("backtest", "train", "predict"), force: bool = False) -> GroupReport:
    """Run the requested steps for one frequency group and record everything under ``run_id``."""
    report = GroupReport(freq=group.freq)
    pipeline_run_data_insert(conn, run_id=run_id, data=_data_versions(group))
    latest = _backtest(conn, run_id, config, group, report) if "backtest" in steps else None
    quantiles = pd.DataFrame()
    if latest is not None and not latest.forecasts.empty:
        quantiles = conformal_quantiles(latest.forecasts, series_scale(group.panel), tuple(config.prediction.levels))
    elif "predict" in steps:
        quantiles = _stored_quantiles(conn, config, group)
    trained = _train(conn, run_id, config, group, report, force=force) if {"train", "predict"} & set(steps) else {}
    if "predict" in steps:
        _predict(conn, run_id, config, group, trained, quantiles, report)
    if not report.champions.empty:
        champions = _with_series_id(report.champions, group)
        champions["model_version_id"] = champions["model"].map(report.model_versions).astype("Int64")
        champions_write(conn, run_id=run_id, frame=champions)
    return report


def _stored_quantiles(conn, config: PipelineConfig, group: GroupData) -> pd.DataFrame:
    """Interval calibration from the newest stored backtest of this config (for a predict-only run)."""
    ids = [s.series_id for s in group.targets.values()]
    rows = conn.execute(
        "SELECT b.model, b.series_id, b.step, b.y, b.yhat FROM backtest_forecasts b "
        "WHERE b.mode = 'latest' AND b.series_id = ANY(%s) AND b.run_id = (SELECT max(b2.run_id) "
        "FROM backtest_forecasts b2 JOIN pipeline_runs r USING (run_id) WHERE r.config_name = %s "
        "AND b2.series_id = ANY(%s))",
        (ids, config.name, ids),
    ).fetchall()
    if not rows:
        return pd.DataFrame()
    names = {s.series_id: n for n, s in group.targets.items()}
    frame = pd.DataFrame(rows, columns=["model", "series_id", STEP, Y, YHAT])
    frame[SERIES] = frame.pop("series_id").map(names)
    return conformal_quantiles(frame, series_scale(group.panel), tuple(config.prediction.levels))
