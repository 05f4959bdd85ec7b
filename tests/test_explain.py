"""SHAP explanations of the global LightGBM model where the categorical series id drives its splits, at the
10,000 series where shap.TreeExplainer lost its expected value (None) and the whole run failed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.analysis.explain import explain_forecasts
from forecasting.features.build import FeatureSpec
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

    gain = dict(zip(model.feature_names_, model.model_.booster_.feature_importance(importance_type="gain"),
                    strict=True))
    assert gain["series_id"] > 0  # categorical splits on the series id exist...
    assert "series_id" not in set(importance["feature"]) | set(explanations["feature"])  # ...but explain nothing
    assert len(explanations) == N_SERIES * 2 * (len(model.feature_names_) - 1)
    assert np.isfinite(explanations[["shap_value", "base_value"]].to_numpy()).all()
    # SHAP's additivity: each row's base value (the series' baseline) plus its contributions is the forecast
    grouped = explanations.groupby(["series", "step"])
    total = grouped["shap_value"].sum() + grouped["base_value"].first()
    expected = forecasts.set_index(["series", "step"])["yhat"]
    assert np.allclose(total.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-6)


def test_explanations_are_in_the_targets_units_with_differenced_scaled_targets():
    rng = np.random.default_rng(1)
    t = np.arange(60)
    frames = [pd.DataFrame({"series": f"s{i}", "ts": pd.date_range("2024-01-01", periods=60, freq="D"),
                            "y": scale * (10 + np.sin(t / 3) + rng.normal(0, 0.1, 60))})
              for i, scale in enumerate((1.0, 1000.0))]
    model = LightGBMGlobal(FeatureSpec(lags=(1, 2, 3)), transforms=("diff", "scale"),
                           params={"n_estimators": 30, "min_child_samples": 5}).fit(pd.concat(frames), freq="D")
    forecasts = model.predict(3).set_index(["series", "step"])["yhat"]
    explanations, _ = explain_forecasts(model, top_k=len(model.feature_names_))
    grouped = explanations.groupby(["series", "step"])
    total = grouped["shap_value"].sum() + grouped["base_value"].first()
    assert np.allclose(total.loc[forecasts.index], forecasts, rtol=1e-9)
    # the same shapes at 1000 times the level: contributions 1000 times larger, in the series' own units
    size = explanations.assign(a=explanations["shap_value"].abs()).groupby("series")["a"].mean()
    assert 100 < size["s1"] / size["s0"] < 10_000
    # step 1's base starts from the last observed value (the change is what the features explain)
    first = explanations[(explanations["series"] == "s1") & (explanations["step"] == 1)]
    last = frames[1]["y"].iloc[-1]
    assert abs(first["base_value"].iloc[0] - last) < 0.1 * last
