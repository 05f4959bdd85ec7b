"""SHAP explanations of tree-model forecasts: top contributions per forecast and global importance.

LightGBM models are explained with LightGBM's own TreeSHAP (``pred_contrib=True``): exact SHAP values that
handle its native categorical splits, which the series-id feature uses. ``shap.TreeExplainer`` parses those
splits from the model dump and failed (``expected_value`` None) once the series id had thousands of levels.
Other tree models go through ``shap.TreeExplainer``.

Contributions are in the model's output space: with target transforms (differencing, scaling) that is the
transformed next step, not the level of the series. The ranking of features is what they are for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.panel import SERIES, STEP, TS

__all__ = ["explain_forecasts"]


def _numeric(X: pd.DataFrame) -> np.ndarray:
    """Feature values as floats; categorical columns (series id) as their codes."""
    columns = [X[c].cat.codes.astype("float64") if isinstance(X[c].dtype, pd.CategoricalDtype)
               else X[c].astype("float64") for c in X.columns]
    return np.column_stack(columns) if columns else np.empty((len(X), 0))


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


def explain_forecasts(model, *, top_k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explain the last ``predict`` of a recursive tree model (uses its ``last_X_`` and ``last_keys_``)."""
    X = pd.concat(model.last_X_, ignore_index=True)
    keys = pd.concat(model.last_keys_, ignore_index=True)
    values, base = _contributions(model.model_, X)
    features = np.asarray(X.columns)
    order = np.argsort(-np.abs(values), axis=1)[:, :top_k]
    rows = np.repeat(np.arange(len(X)), order.shape[1])
    cols = order.ravel()
    numeric = _numeric(X)
    explanations = pd.DataFrame({
        SERIES: keys[SERIES].to_numpy()[rows], TS: keys[TS].to_numpy()[rows], STEP: keys[STEP].to_numpy()[rows],
        "rank": np.tile(np.arange(1, order.shape[1] + 1), len(X)), "feature": features[cols],
        "feature_value": numeric[rows, cols], "shap_value": values[rows, cols], "base_value": base,
    })
    booster = getattr(model.model_, "booster_", None)
    gain = booster.feature_importance(importance_type="gain") if booster is not None else np.full(len(features), np.nan)
    importance = pd.DataFrame({"feature": features, "mean_abs_shap": np.abs(values).mean(axis=0), "gain": gain})
    return explanations, importance.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True)
