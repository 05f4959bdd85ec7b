"""Step ``predict``: forecasts of one partition from the model versions its last successful training
registered. It never trains: the horizon is an argument, not part of any model's fingerprint.

Intervals are calibrated on the partition's newest stored backtest (split conformal per model and step);
SHAP explanations are best effort and never block the forecasts. A series a model forecasts as NaN/inf
loses that model's forecast (recorded as a skip), not the others'. Every model's forecasts of the partition are
written in one transaction at the end: a step that dies half-way leaves none of them behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import psycopg

from forecasting.analysis.explain import explain_forecasts
from forecasting.backtesting.intervals import apply_intervals, conformal_quantiles, extend_quantiles, series_scale
from forecasting.errors import ForecastingError
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.models.registry import model_class
from forecasting.steps.data import PartitionData, load_partition
from forecasting.steps.record import recorded
from forecasting.store.registry import model_version_load, model_version_series
from forecasting.store.results import (
    ForecastOutput,
    backtest_forecasts_latest,
    feature_importance_write,
    forecasts_write_partition,
)
from forecasting.store.steps import Skip, latest_trained_models, skips_write

__all__ = ["MissingModelError", "predict_partition"]

_log = logging.getLogger(__name__)


class MissingModelError(ForecastingError):
    """Prediction found no trained model version for a partition: training must run first."""


def predict_partition(conn: psycopg.Connection, *, run_id: int, key: str,
                      progress: Callable[[str], None] | None = None) -> dict:
    return recorded(conn, run_id=run_id, step="predict", key=key, work=lambda: _predict(conn, run_id, key, progress))


def _predict(conn: psycopg.Connection, run_id: int, key: str, progress) -> dict:
    data = load_partition(conn, run_id=run_id, key=key, step="predict")
    config = data.config
    horizon = config.preprocessing.horizon
    skips = list(data.skips)
    if data.panel.empty:  # nothing here can be modelled: the skips say why, and there is nothing to load
        skips_write(conn, run_id=run_id, step="predict", partition_key=key, skips=skips)
        return {"key": key, "horizon": horizon, "models": {}, "n_skips": len(skips)}
    train_run, trained = latest_trained_models(conn, config_name=config.name, partition_key=key, run_id=run_id)
    missing = [m for m in config.models.enabled if m not in trained]
    if len(missing) == len(config.models.enabled):
        raise MissingModelError(
            f"partition {key} of {config.name!r}: no trained model version for model(s) {', '.join(missing)}"
            + (f" (its last training, run {train_run}, registered none of them)" if train_run else
               " (no successful training of this partition yet: run the train step first)"))
    summary: dict = {"key": key, "horizon": horizon, "train_run": train_run, "models": {}, "explanations": None}
    for name in missing:
        _log.warning("partition %s: no trained model version for %s; it is left out", key, name)
        skips += [Skip(i, f"no trained model version of {name} for partition {key}", model=name)
                  for i in data.series_ids]
    scale = series_scale(data.panel)
    quantiles = _quantiles(conn, data, scale)
    outputs: list[ForecastOutput] = []
    for name in config.models.enabled:
        if name not in trained:
            continue
        if progress is not None:
            progress(name)
        version_id = trained[name]
        try:
            model = model_version_load(conn, version_id)
            predicted = model.predict(horizon)
        except Exception as exc:  # noqa: BLE001 - one model failing costs only that model
            _log.exception("partition %s: prediction with %s failed", key, name)
            skips += [Skip(i, f"prediction failed: {type(exc).__name__}: {exc}", model=name) for i in data.series_ids]
            continue
        # a series too short for this model was never fitted by it (its backtest skip says so)
        expected = set(data.panel_for(name)[SERIES])
        predicted = predicted[predicted[SERIES].isin(expected)]
        finite = np.isfinite(predicted[YHAT].to_numpy(dtype="float64"))
        bad = set(predicted.loc[~finite, SERIES]) | (expected - set(predicted[SERIES]))
        skips += [Skip(int(i), "forecast was NaN/infinite or missing", model=name) for i in sorted(bad)]
        predicted = predicted[~predicted[SERIES].isin(bad)].reset_index(drop=True)
        if predicted.empty:
            continue
        explanations = _explain(conn, model, name, version_id, config, summary)
        predicted = predicted.assign(model=name)
        outputs.append(ForecastOutput(
            model_version_id=version_id,
            forecasts=_forecast_rows(predicted, data, model_version_series(conn, version_id)),
            intervals=_interval_rows(predicted, quantiles, scale, tuple(config.prediction.levels)),
            explanations=explanations if explanations is None else
            explanations[explanations[SERIES].isin(predicted[SERIES])].rename(columns={SERIES: "series_id"})))
        summary["models"][name] = {"model_version_id": version_id, "series": int(predicted[SERIES].nunique()),
                                   "rows": len(predicted)}
    forecasts_write_partition(conn, run_id=run_id, series_ids=data.series_ids, outputs=outputs)
    skips_write(conn, run_id=run_id, step="predict", partition_key=key, skips=skips)
    summary["n_skips"] = len(skips)
    _log.info("partition %s forecasts per model:\n%s", key, "\n".join(
        f"  {name:<18}{info['series']:>6} series {info['rows']:>8} rows  (model version {info['model_version_id']})"
        for name, info in summary["models"].items()) or "  none")
    return summary


def _quantiles(conn: psycopg.Connection, data: PartitionData, scale: pd.Series) -> pd.DataFrame:
    backtest = backtest_forecasts_latest(conn, config_name=data.config.name, series_ids=data.series_ids,
                                         run_id=data.run_id)
    if backtest.empty:
        _log.warning("partition %s: no stored backtest, so its forecasts get no intervals", data.key)
        return pd.DataFrame()
    backtest = backtest.rename(columns={"series_id": SERIES})
    quantiles = conformal_quantiles(backtest, scale, tuple(data.config.prediction.levels))
    return extend_quantiles(quantiles, data.config.preprocessing.horizon)


def _explain(conn, model, name: str, version_id: int, config, summary: dict) -> pd.DataFrame | None:
    if not (config.prediction.explain_top_k and model_class(name).explainable and hasattr(model, "last_X_")):
        return None
    try:
        explanations, importance = explain_forecasts(model, top_k=config.prediction.explain_top_k)
        feature_importance_write(conn, model_version_id=version_id, frame=importance)
    except Exception as exc:  # noqa: BLE001 - explanations are a bonus; the forecasts must not wait on them
        _log.warning("SHAP explanations of %s failed; forecasts are stored without them", name, exc_info=True)
        summary["explanations"] = f"{name}: {type(exc).__name__}: {exc}"
        return None
    return explanations


def _forecast_rows(predicted: pd.DataFrame, data: PartitionData, trained_on: dict[int, int]) -> pd.DataFrame:
    """Forecast rows with their origin: the last observation before the first forecast step, and the series
    version the model was trained on."""
    first = predicted[predicted[STEP] == 1][[SERIES, TS]].rename(columns={TS: "first_ts"})
    history = data.panel.merge(first, on=SERIES)
    last = history[history[TS] < history["first_ts"]].groupby(SERIES, sort=True).tail(1).set_index(SERIES)
    out = predicted.rename(columns={SERIES: "series_id"})
    current = {i: s.version_id for i, s in data.targets.items()}
    out["series_version_id"] = out["series_id"].map(trained_on).fillna(out["series_id"].map(current)).astype("int64")
    out["last_ts"] = out["series_id"].map(last[TS])
    out["last_value"] = out["series_id"].map(last[Y])
    return out


def _interval_rows(predicted: pd.DataFrame, quantiles: pd.DataFrame, scale: pd.Series,
                   levels: tuple[int, ...]) -> pd.DataFrame:
    if quantiles.empty or not levels:
        return pd.DataFrame(columns=["series_id", TS, "level", "lo", "hi"])
    wide = apply_intervals(predicted, quantiles, scale, levels)
    rows = [wide[[SERIES, TS]].assign(level=lvl, lo=wide[f"lo_{lvl}"], hi=wide[f"hi_{lvl}"]) for lvl in levels]
    long = pd.concat(rows, ignore_index=True).dropna(subset=["lo", "hi"])
    long = long[np.isfinite(long["lo"]) & np.isfinite(long["hi"])]
    return long.rename(columns={SERIES: "series_id"})
