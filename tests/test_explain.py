"""SHAP explanations of the global LightGBM model where the categorical series id drives its splits, at the
10,000 series where shap.TreeExplainer lost its expected value (None) and the whole run failed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.explain import explain_forecasts
from forecasting.features import FeatureSpec
from forecasting.models.recursive import LightGBMGlobal

N_SERIES, POINTS = 10_000, 20


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    levels = rng.uniform(0, 1000, N_SERIES)[:, None]  # per-series levels: the series id is worth splitting on
    wave = np.sin(np.arange(POINTS)[None, :] * rng.uniform(0, 3, N_SERIES)[:, None]) * 50
    y = levels + wave + rng.normal(0, 1, (N_SERIES, POINTS))
    ts = pd.date_range("2024-01-01", periods=POINTS, freq="D")
    return pd.DataFrame({"series": np.repeat(np.arange(N_SERIES), POINTS), "ts": np.tile(ts, N_SERIES),
                         "y": y.ravel()})


def test_explanations_add_up_to_the_forecasts_at_ten_thousand_series():
    params = {"n_estimators": 30, "num_leaves": 63, "min_data_per_group": 5, "cat_smooth": 1,
              "max_cat_threshold": 512}
    model = LightGBMGlobal(FeatureSpec(lags=(1, 2)), transforms=(), params=params).fit(_panel(), freq="D")
    forecasts = model.predict(2)
    explanations, importance = explain_forecasts(model, top_k=len(model.feature_names_))

    assert "series_id" in set(importance.loc[importance["gain"] > 0, "feature"])  # categorical splits exist
    assert len(explanations) == N_SERIES * 2 * len(model.feature_names_)
    assert np.isfinite(explanations[["shap_value", "base_value"]].to_numpy()).all()
    # SHAP's additivity: base value plus every contribution is the model's output for that row
    total = explanations.groupby(["series", "step"])["shap_value"].sum() + explanations["base_value"].iloc[0]
    expected = forecasts.set_index(["series", "step"])["yhat"]
    assert np.allclose(total.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-6)
