"""SHAP explanations of tree-model forecasts: top contributions per forecast and global importance.

LightGBM models are explained with LightGBM's own TreeSHAP (``pred_contrib=True``): exact SHAP values that
handle its native categorical splits, which the series-id feature uses. ``shap.TreeExplainer`` parses those
splits from the model dump and failed (``expected_value`` None) once the series id had thousands of levels.
Other tree models go through ``shap.TreeExplainer``.

Contributions are given in the target's units: the estimator works on scaled (and possibly differenced)
values, so each SHAP value is multiplied by the series' scale. The base value of each row is then whatever
makes the row add up to its forecast: the model's expected output in target units, plus the level the
forecast starts from (the previous step's value when the target is differenced, the series' mean when it is
only scaled), plus the series id's contribution. So for a differenced model the contributions explain the
change from the previous step, and ``base_value + sum(shap_value)`` is the forecast itself.

The series id (the global LightGBM's categorical feature) is never offered as an explanation, in the
per-forecast rows or in the importance: "because it is series 17" explains nothing. Its effect is part of
the row's base value (the series' own baseline). Models pickled before these rules (no ``last_forecast_``)
are explained in the estimator's output space as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, STEP, TS, YHAT

SERIES_FEATURE = "series_id"  # forecasting.models.recursive.SERIES_FEATURE (not imported: that pulls in LightGBM)

__all__ = ["explain_forecasts"]


def _numeric(X: pd.DataFrame) -> np.ndarray:
    """Feature values as floats; categorical columns (series id) as their codes."""
    columns = [X[c].cat.codes.astype("float64") if isinstance(X[c].dtype, pd.CategoricalDtype)
               else X[c].astype("float64") for c in X.columns]
    return np.column_stack(columns) if columns else np.empty((len(X), 0))


def _gain(model, n_features: int) -> np.ndarray:
    booster = getattr(model.model_, "booster_", None)
    return (np.asarray(booster.feature_importance(importance_type="gain"), dtype="float64") if booster is not None
            else np.full(n_features, np.nan))


def _contributions(estimator, X: pd.DataFrame) -> tuple[np.ndarray, float]:
    """(SHAP values per row and feature, base value)."""
    booster = getattr(estimator, "booster_", None)
    if booster is not None:
        contrib = np.asarray(booster.predict(X, pred_contrib=True), dtype="float64")
        return contrib[:, :-1], float(contrib[0, -1]) if len(contrib) else 0.0
    import shap

    explainer = shap.TreeExplainer(estimator)
    values = np.asarray(explainer.shap_values(X), dtype="float64")
    return values, float(np.ravel(explainer.expected_value)[0])


def _in_target_units(model, X: pd.DataFrame, keys: pd.DataFrame, values: np.ndarray,
                     base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SHAP values in target units, per-row base values, mask of the features offered as explanations)."""
    offered = np.asarray([c != SERIES_FEATURE for c in X.columns])
    forecast = getattr(model, "last_forecast_", None)
    if forecast is None or not hasattr(model, "output_scale"):
        return values, np.full(len(X), base), offered
    scaled = values * model.output_scale(keys[SERIES])[:, None]
    yhat = keys[[SERIES, STEP]].merge(forecast, on=[SERIES, STEP], how="left")[YHAT].to_numpy(dtype="float64")
    return scaled, yhat - scaled[:, offered].sum(axis=1), offered


def explain_forecasts(model, *, top_k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explain the last ``predict`` of a recursive tree model (uses its ``last_X_`` and ``last_keys_``)."""
    X = pd.concat(model.last_X_, ignore_index=True)
    keys = pd.concat(model.last_keys_, ignore_index=True)
    raw, base = _contributions(model.model_, X)
    values, bases, offered = _in_target_units(model, X, keys, raw, base)
    gain_all = _gain(model, len(X.columns))
    X, values, gain = X.loc[:, offered], values[:, offered], gain_all[offered]
    features = np.asarray(X.columns)
    order = np.argsort(-np.abs(values), axis=1)[:, :top_k]
    rows = np.repeat(np.arange(len(X)), order.shape[1])
    cols = order.ravel()
    numeric = _numeric(X)
    explanations = pd.DataFrame({
        SERIES: keys[SERIES].to_numpy()[rows], TS: keys[TS].to_numpy()[rows], STEP: keys[STEP].to_numpy()[rows],
        "rank": np.tile(np.arange(1, order.shape[1] + 1), len(X)), "feature": features[cols],
        "feature_value": numeric[rows, cols], "shap_value": values[rows, cols], "base_value": bases[rows],
    })
    importance = pd.DataFrame({"feature": features, "mean_abs_shap": np.abs(values).mean(axis=0), "gain": gain})
    return explanations, importance.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True)
