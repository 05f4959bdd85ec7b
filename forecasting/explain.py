"""SHAP explanations of tree-model forecasts: top contributions per forecast and global importance.

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


def explain_forecasts(model, *, top_k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explain the last ``predict`` of a recursive tree model (uses its ``last_X_`` and ``last_keys_``)."""
    import shap

    explainer = shap.TreeExplainer(model.model_)
    base = float(np.ravel(explainer.expected_value)[0])
    X = pd.concat(model.last_X_, ignore_index=True)
    keys = pd.concat(model.last_keys_, ignore_index=True)
    values = np.asarray(explainer.shap_values(X))
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
    gain = model.model_.booster_.feature_importance(importance_type="gain")
    importance = pd.DataFrame({"feature": features, "mean_abs_shap": np.abs(values).mean(axis=0), "gain": gain})
    return explanations, importance.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True)
