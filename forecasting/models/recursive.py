"""Global models over lag features, forecasting recursively one step at a time (mlforecast's strategy).

One model is trained on the rows of all series: features at row t use only y before t (see
``forecasting.features``), the target is y_t after the configured target transforms. To forecast h steps,
the model predicts step 1 for every series at once, appends it to the history, rebuilds the features of
the next row from the tail of each series, and repeats: ``horizon`` vectorised predictions in all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.features import FeatureSpec, build_features, tail_for_prediction
from forecasting.models.base import Forecaster
from forecasting.models.transforms import TargetTransform, apply_inverse, make_transforms
from forecasting.panel import SERIES, STEP, TS, YHAT, Y

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

__all__ = ["LightGBMGlobal", "LinearGlobal", "RandomForestGlobal", "RecursiveGlobalForecaster", "feature_spec"]

SERIES_FEATURE = "series_id"


def feature_spec(config: PipelineConfig, *, has_exog: bool) -> FeatureSpec:
    """The lag, rolling, calendar and exogenous features the config asks of the global models."""
    pre = config.preprocessing
    return FeatureSpec(
        lags=tuple(pre.target_lags),
        rolling_windows=tuple(pre.rolling_windows),
        exog_lags=tuple(pre.feature_lags) if has_exog else (),
        calendar=pre.calendar,
        technical=pre.technical,
    )


class RecursiveGlobalForecaster(Forecaster):
    """Shared engine; subclasses provide the estimator and whether the series id is a feature."""

    kind = "global"
    series_as_feature = False
    config_key: ClassVar[str] = ""  # the section of ``models`` in the config holding the estimator's parameters

    def __init__(self, spec: FeatureSpec, *, transforms: tuple[str, ...] = (), params: dict | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.transform_names = tuple(transforms)
        self.params = dict(params or {})
        self.seed = seed

    @classmethod
    def from_config(cls, config: PipelineConfig, *, has_exog: bool) -> Self:
        return cls(feature_spec(config, has_exog=has_exog), transforms=tuple(config.preprocessing.target_transforms),
                   params=getattr(config.models, cls.config_key), seed=config.models.seed)

    @classmethod
    def settings(cls, config: PipelineConfig, *, has_exog: bool) -> dict:
        return {"model": getattr(config.models, cls.config_key), "seed": config.models.seed,
                "features": feature_spec(config, has_exog=has_exog).__dict__,
                "target_transforms": list(config.preprocessing.target_transforms)}

    def _estimator(self):
        raise NotImplementedError

    def _matrix(self, features: pd.DataFrame, series: pd.Series) -> pd.DataFrame:
        if not self.series_as_feature:
            return features
        codes = pd.Categorical(series.to_numpy(), categories=self.series_categories_)
        return features.assign(**{SERIES_FEATURE: codes})

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        self.freq_ = freq
        self.exog_ = exog
        self.transforms_: list[TargetTransform] = make_transforms(self.transform_names)
        transformed = panel
        for transform in self.transforms_:
            transformed = transform.fit_transform(transformed)
        self.series_categories_ = sorted(panel[SERIES].unique())
        features = build_features(transformed, self.spec, freq=freq, exog=exog)
        X = self._matrix(features, transformed[SERIES])
        self.feature_names_ = list(X.columns)
        self.model_ = self._estimator().fit(X, transformed[Y].to_numpy())
        self.history_ = tail_for_prediction(transformed, self.spec).reset_index(drop=True)
        # series whose transformed history is empty (e.g. one point, differenced) cannot be forecast here
        for name in sorted(set(panel[SERIES]) - set(self.history_[SERIES])):
            self.fallbacks[name] = "too short for the target transforms: naive"
        self.naive_last_ = panel.groupby(SERIES, sort=True).tail(1)[[SERIES, TS, Y]].reset_index(drop=True)
        return self

    def _next_rows(self, history: pd.DataFrame) -> pd.DataFrame:
        last = history.groupby(SERIES, sort=True).tail(1)
        offset = pd.tseries.frequencies.to_offset(self.freq_)
        next_ts = pd.DatetimeIndex(last[TS]) + offset
        return pd.DataFrame({SERIES: last[SERIES].to_numpy(), TS: next_ts.astype("datetime64[ns]"), Y: np.nan})

    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame:
        exog = self.exog_ if exog is None else exog
        history = self.history_
        steps = []
        # the feature rows behind each forecast, kept for explanations (SHAP) of the last predict call
        self.last_X_: list[pd.DataFrame] = []
        self.last_keys_: list[pd.DataFrame] = []
        for step in range(1, horizon + 1):
            new = self._next_rows(history)
            frame = pd.concat([history, new], ignore_index=True).sort_values([SERIES, TS], kind="stable")
            frame = frame.reset_index(drop=True)
            features = build_features(frame, self.spec, freq=self.freq_, exog=exog)
            is_new = frame[Y].isna().to_numpy()
            X = self._matrix(features.loc[is_new].reset_index(drop=True), frame.loc[is_new, SERIES])
            yhat = np.asarray(self.model_.predict(X[self.feature_names_]), dtype="float64")
            frame.loc[is_new, Y] = yhat
            steps.append(pd.DataFrame({SERIES: frame.loc[is_new, SERIES].to_numpy(),
                                       TS: frame.loc[is_new, TS].to_numpy(), STEP: step, YHAT: yhat}))
            self.last_X_.append(X[self.feature_names_])
            self.last_keys_.append(steps[-1][[SERIES, TS, STEP]])
            history = tail_for_prediction(frame, self.spec).reset_index(drop=True)
        out = apply_inverse(self.transforms_, pd.concat(steps, ignore_index=True))
        return self._with_naive_fallbacks(out, horizon)

    def _with_naive_fallbacks(self, out: pd.DataFrame, horizon: int) -> pd.DataFrame:
        if not self.fallbacks:
            return out.sort_values([SERIES, STEP], kind="stable").reset_index(drop=True)
        from forecasting.models.baselines import NaiveForecaster

        missing = self.naive_last_[self.naive_last_[SERIES].isin(self.fallbacks)]
        naive = NaiveForecaster().fit(missing, freq=self.freq_).predict(horizon)
        return pd.concat([out, naive], ignore_index=True).sort_values([SERIES, STEP], kind="stable").reset_index(
            drop=True)


class LightGBMGlobal(RecursiveGlobalForecaster):
    """One LightGBM model across all target series; the series id is a categorical feature."""

    name = "lightgbm_global"
    config_key = "lightgbm"
    series_as_feature = True
    explainable = True

    def _estimator(self):
        import lightgbm

        # deterministic + fixed threads: the same data and seed give bit-identical models. One thread by
        # default: on a busy 2-core worker OpenMP's spinning threads made training 4x slower, not faster.
        params = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "verbosity": -1,
                  "random_state": self.seed, "deterministic": True, "force_row_wise": True, "n_jobs": 1}
        params.update(self.params)
        return lightgbm.LGBMRegressor(**params)


class RandomForestGlobal(RecursiveGlobalForecaster):
    name = "random_forest"
    config_key = "random_forest"

    def _estimator(self):
        from sklearn.ensemble import RandomForestRegressor

        params = {"n_estimators": 200, "min_samples_leaf": 5, "max_features": 0.5, "n_jobs": 1,
                  "random_state": self.seed}
        params.update(self.params)
        return RandomForestRegressor(**params)


class LinearGlobal(RecursiveGlobalForecaster):
    """Ridge regression on the lag features (missing early lags imputed with the training mean)."""

    name = "linear"
    config_key = "linear"

    def _estimator(self):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(),
                             Ridge(**{"alpha": 1.0, **self.params}))
