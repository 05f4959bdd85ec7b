"""Global models over lag features, forecasting recursively one step at a time (mlforecast's strategy).

One model is trained on the rows of all series: features at row t use only y before t (see
``forecasting.features.build``), the target is y_t after the configured target transforms. To forecast h steps,
the model predicts step 1 for every series at once, appends it to the history, rebuilds the features of
the next row from the tail of each series, and repeats: ``horizon`` vectorised predictions in all.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd
from pydantic import ConfigDict, RootModel, model_validator

from forecasting.features.build import FeatureSpec, build_features, tail_for_prediction
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.frequency import season_length
from forecasting.models.base import Forecaster
from forecasting.models.defaults import auto_features, auto_features_for
from forecasting.models.transforms import TargetTransform, apply_inverse, make_transforms
from forecasting.tuning.settings import SearchSettings, search_problems

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

__all__ = ["AUTO", "TRANSFORM_CANDIDATES", "AutoSpec", "EstimatorSettings", "LightGBMGlobal", "LightGBMSettings",
           "LinearGlobal", "RandomForestGlobal", "RecursiveGlobalForecaster", "feature_need", "feature_spec"]

SERIES_FEATURE = "series_id"
AUTO = "auto"
# target transforms tried when the config says "auto", on one holdout: level only, or level and trend removed.
# Seasonal differencing ("sdiff") is not among them: as a third candidate it made M3 Quarterly worse (OWA 0.858
# -> 0.880, benchmarks/accuracy.py), on one holdout and on three; it can be set in the config. Three holdout
# origins instead of one made the same choices on M4 Weekly and M3 Quarterly at 45% more time on Weekly.
TRANSFORM_CANDIDATES: tuple[tuple[str, ...], ...] = (("scale",), ("diff", "scale"))
# the transforms are chosen by a mean over series of scaled holdout errors: this many series, evenly spread over the
# sorted ids, estimate it as well as a whole partition (its standard error shrinks as one over the square root of
# the count), so a partition of 1,000 series does not pay for two trial fits on every series
TRIAL_SERIES = 300

_log = logging.getLogger(__name__)


class EstimatorSettings(RootModel[dict[str, Any]]):
    """A global model's section of ``models`` (``models.lightgbm``, ``models.linear``, ...): estimator parameters,
    passed to the estimator as given, and for a ``tunable`` model a ``search`` for 'forecasting tune'. A subclass
    names its estimator and says which parameter names it accepts (``unknown_parameters``); the search space is
    checked against the same names."""

    model_config = ConfigDict(frozen=True)

    estimator: ClassVar[str] = "the estimator"  # its name in messages
    tunable: ClassVar[bool] = False  # whether the section may hold a ``search``

    @classmethod
    def unknown_parameters(cls, names: Iterable[str]) -> list[str]:
        """The names among ``names`` that the estimator does not accept, sorted (by default it checks none)."""
        return []

    @model_validator(mode="after")
    def _known_parameters_and_search(self) -> Self:
        unknown = self.unknown_parameters(set(self.root) - {"search"})
        if unknown:
            raise ValueError(f"{self.estimator} does not accept parameter(s) {', '.join(map(repr, unknown))}")
        if "search" in self.root:
            if not self.tunable:
                raise ValueError(f"search: only {_tunable_sections()} has a search for 'forecasting tune' so far")
            raw = self.root["search"]
            space = raw.get("space") if isinstance(raw, dict) else None
            names = set(space) if isinstance(space, dict) else set()
            problems = search_problems(raw, names - set(self.unknown_parameters(names)), estimator=self.estimator)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def __getitem__(self, key: str) -> Any:
        return self.root[key]

    def __contains__(self, key: object) -> bool:
        return key in self.root

    def get(self, key: str, default: Any = None) -> Any:
        return self.root.get(key, default)

    def estimator_params(self) -> dict[str, Any]:
        """The estimator parameters, without the search."""
        return {k: v for k, v in self.root.items() if k != "search"}

    def search_settings(self) -> SearchSettings | None:
        """The parsed ``search``, or None when the section has none."""
        raw = self.root.get("search")
        return SearchSettings.model_validate(raw) if raw is not None else None


def _tunable_sections() -> str:
    from forecasting.models.registry import settings_sections

    return ", ".join(f"models.{key}" for key, cls in settings_sections().items() if cls.tunable) or "no section"


# LGBMRegressor's constructor arguments (LGBMRegressor().get_params(), lightgbm 4): a section using only these is
# checked without importing LightGBM, so reading a config stays cheap (the Airflow DAG file reads configs)
_LGBM_ARGUMENTS = frozenset({
    "boosting_type", "class_weight", "colsample_bytree", "importance_type", "learning_rate", "max_depth",
    "min_child_samples", "min_child_weight", "min_split_gain", "n_estimators", "n_jobs", "num_leaves", "objective",
    "random_state", "reg_alpha", "reg_lambda", "subsample", "subsample_for_bin", "subsample_freq"})


@functools.cache
def _lightgbm_parameter_names() -> frozenset[str]:
    import lightgbm

    names = set(lightgbm.LGBMRegressor().get_params())
    # LGBMRegressor forwards unknown keyword arguments to the booster, so native parameter names and
    # their aliases are accepted too; LightGBM's own library lists them.
    aliases = getattr(getattr(lightgbm.basic, "_ConfigAliases", None), "_get_all_param_aliases", None)
    if aliases is not None:
        for canonical, alias_list in aliases().items():
            names.add(canonical)
            names.update(alias_list)
    return frozenset(names)


class LightGBMSettings(EstimatorSettings):
    """``models.lightgbm``: LGBMRegressor's parameters (native names and aliases too) and a ``search``."""

    estimator: ClassVar[str] = "LGBMRegressor"
    tunable: ClassVar[bool] = True

    @classmethod
    def unknown_parameters(cls, names: Iterable[str]) -> list[str]:
        rest = set(names) - _LGBM_ARGUMENTS
        return sorted(rest - _lightgbm_parameter_names()) if rest else []


@dataclass(frozen=True)
class AutoSpec:
    """Features as the config states them, where "auto" fields are resolved per panel and frequency at fit time
    (``forecasting.models.defaults``)."""

    lags: tuple[int, ...] | str
    rolling_windows: tuple[int, ...] | str
    calendar: bool | str
    exog_lags: tuple[int, ...] = ()
    technical: bool = False

    def resolve(self, panel: pd.DataFrame, freq: str | None) -> FeatureSpec:
        auto = auto_features(panel, freq) if AUTO in (self.lags, self.rolling_windows, self.calendar) else None
        return FeatureSpec(
            lags=auto.lags if self.lags == AUTO else self.lags,
            rolling_windows=auto.rolling_windows if self.rolling_windows == AUTO else self.rolling_windows,
            calendar=auto.calendar if self.calendar == AUTO else self.calendar,
            exog_lags=self.exog_lags,
            technical=self.technical,
        )


def _auto_spec(config: PipelineConfig, *, has_exog: bool, target_lags: list[int] | None = None) -> AutoSpec:
    pre = config.preprocessing
    lags = target_lags or pre.target_lags
    return AutoSpec(
        lags=lags if lags == AUTO else tuple(lags),
        rolling_windows=pre.rolling_windows if pre.rolling_windows == AUTO else tuple(pre.rolling_windows),
        calendar=pre.calendar,
        exog_lags=tuple(pre.feature_lags) if has_exog else (),
        technical=pre.technical,
    )


def feature_spec(config: PipelineConfig, *, has_exog: bool, panel: pd.DataFrame | None = None,
                 freq: str | None = None, target_lags: list[int] | None = None) -> FeatureSpec | AutoSpec:
    """The lag, rolling, calendar and exogenous features the config asks of the global models.

    "auto" settings are resolved from ``panel`` and ``freq`` when a panel is given; without one, an ``AutoSpec``
    is returned for the model to resolve when it is fitted. ``target_lags`` (a tuned lag set) replaces the
    config's.
    """
    spec = _auto_spec(config, has_exog=has_exog, target_lags=target_lags)
    if AUTO not in (spec.lags, spec.rolling_windows, spec.calendar):
        return spec.resolve(panel if panel is not None else pd.DataFrame({SERIES: []}), freq)
    return spec.resolve(panel, freq) if panel is not None else spec


def feature_need(config: PipelineConfig, *, freq: str | None, lengths: pd.Series,
                 target_lags: list[int] | None = None) -> int:
    """Points a series needs for a full row of the lag and rolling features the config asks of a global model,
    plus one target: with lags the config lists, its largest lag or window + 1 ("auto" windows as resolved for a
    partition of these lengths); with "auto" lags 2, since those are capped to fit the short series."""
    spec = _auto_spec(config, has_exog=False, target_lags=target_lags)
    if spec.lags == AUTO:
        # "auto" features are capped to fit the partition's short series: two points are enough to fit one
        return max((1, *(() if spec.rolling_windows == AUTO else spec.rolling_windows))) + 1
    windows = spec.rolling_windows
    if windows == AUTO:  # the windows this partition resolves next to lags the user chose
        windows = auto_features_for(lengths.to_numpy(), freq).rolling_windows
    return max((*spec.lags, *windows)) + 1


class RecursiveGlobalForecaster(Forecaster):
    """Shared engine; subclasses provide the estimator and whether the series id is a feature."""

    kind = "global"
    series_as_feature = False

    def __init__(self, spec: FeatureSpec | AutoSpec, *, transforms: tuple[str, ...] | str = (),
                 params: dict | None = None, seed: int = 0, holdout: int | None = None,
                 tuned: dict | None = None) -> None:
        """``spec`` may hold "auto" fields and ``transforms`` may be "auto": both are settled in ``fit`` (the
        transforms by a holdout of the last ``holdout`` points of every series; None: one season, at least 1).
        ``tuned``: the 'forecasting tune' trial ``params`` came from, kept with the model version."""
        super().__init__()
        self.spec_template = spec
        self.spec = spec if isinstance(spec, FeatureSpec) else None
        self.transform_names = transforms if transforms == AUTO else tuple(transforms)
        self.params = dict(params or {})
        self.seed = seed
        self.holdout = holdout

    @classmethod
    def _tuned(cls, config: PipelineConfig) -> tuple[dict, list[int] | None]:
        """The estimator parameters (the config's, with tuned ones over them) and the tuned lags, if any."""
        tuned = config.models.tuned.get(cls.name)
        params = cls.settings(config).estimator_params()
        if tuned is None:
            return params, None
        return {**params, **tuned.params}, tuned.target_lags

    @classmethod
    def from_config(cls, config: PipelineConfig, *, has_exog: bool) -> Self:
        transforms = config.preprocessing.target_transforms
        params, lags = cls._tuned(config)
        tuned = config.models.tuned.get(cls.name)
        # the holdout only chooses "auto" transforms: with fixed ones a new horizon must not cost a refit
        return cls(feature_spec(config, has_exog=has_exog, target_lags=lags),
                   transforms=transforms if transforms == AUTO else tuple(transforms),
                   params=params, seed=config.models.seed,
                   holdout=config.preprocessing.horizon if transforms == AUTO else None,
                   tuned=tuned.model_dump(mode="json") if tuned is not None else None)

    @classmethod
    def min_points(cls, config: PipelineConfig, *, freq: str | None, lengths: pd.Series) -> int:
        # a full row of its lags and rolling windows, and a target to learn from ("auto" ones as this partition
        # resolves them: capped by its lengths)
        _, lags = cls._tuned(config)
        return feature_need(config, freq=freq, lengths=lengths, target_lags=lags)

    def _estimator(self):
        raise NotImplementedError

    def _matrix(self, features: pd.DataFrame, series: pd.Series) -> pd.DataFrame:
        if not self.series_as_feature:
            return features
        codes = pd.Categorical(series.to_numpy(), categories=self.series_categories_)
        return features.assign(**{SERIES_FEATURE: codes})

    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self:
        if not isinstance(self.spec_template, FeatureSpec):
            self.spec = self.spec_template.resolve(panel, freq)
        self.transform_names_ = (self._choose_transforms(panel, freq, exog) if self.transform_names == AUTO
                                 else self.transform_names)
        return self._fit(panel, freq=freq, exog=exog, transforms=self.transform_names_)

    def _choose_transforms(self, panel: pd.DataFrame, freq: str, exog: pd.DataFrame | None) -> tuple[str, ...]:
        """The candidate transforms whose model forecasts the last ``holdout`` points of every series best
        (mean absolute error over the series' mean absolute change, as MASE), trained on the points before."""
        from forecasting.backtesting.intervals import series_scale

        h = self.holdout or max(1, season_length(freq))
        panel = _trial_series(panel)
        position = panel.groupby(SERIES, sort=False).cumcount(ascending=False)
        train, test = panel[position >= h].reset_index(drop=True), panel[position < h]
        if train.empty:
            return TRANSFORM_CANDIDATES[0]
        scale = series_scale(train)
        scores = {}
        for candidate in TRANSFORM_CANDIDATES:
            trial = copy.copy(self)
            trial.params = {**self.params, **self._trial_params()}
            trial.fallbacks = {}
            forecast = trial._fit(train, freq=freq, exog=exog, transforms=candidate).predict(h, exog=exog)
            joined = test.merge(forecast, on=[SERIES, TS])
            scores[candidate] = float(((joined[Y] - joined[YHAT]).abs() / joined[SERIES].map(scale)).mean())
        best = min(TRANSFORM_CANDIDATES, key=lambda c: (scores[c], TRANSFORM_CANDIDATES.index(c)))
        _log.info("%s: target transforms %s chosen on a %d-step holdout (scaled MAE %s)", self.name, best, h,
                  {"+".join(c): round(v, 4) for c, v in scores.items()})
        return best

    def _trial_params(self) -> dict:
        """Estimator settings for the transform trials: cheaper than the real fit where that is possible."""
        return {}

    def _fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None,
             transforms: tuple[str, ...]) -> Self:
        self.freq_ = freq
        self.exog_ = exog
        self.transforms_: list[TargetTransform] = make_transforms(transforms, season=season_length(freq))
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
        self.last_forecast_ = out[[SERIES, STEP, YHAT]]  # in the target's units, for the explanations
        return self._with_naive_fallbacks(out, horizon)

    def output_scale(self, series: pd.Series) -> np.ndarray:
        """Target units per unit of the estimator's output, per row of ``series`` (the scalers' std)."""
        factor = np.ones(len(series))
        for transform in self.transforms_:
            std = getattr(transform, "std_", None)
            if std is not None:
                factor = factor * series.map(std).to_numpy(dtype="float64")
        return factor

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
    settings_key = "lightgbm"
    settings_model = LightGBMSettings
    series_as_feature = True
    explainable = True

    def _trial_params(self) -> dict:
        # a fifth of the trees at a higher rate ranks the transforms like the full model, at a fifth of the cost
        trees = int(self.params.get("n_estimators", 300))
        rate = float(self.params.get("learning_rate", 0.05))
        return {"n_estimators": max(20, trees // 5), "learning_rate": min(0.3, 5 * rate)}

    def _estimator(self):
        import lightgbm

        # deterministic + fixed threads: the same data and seed give bit-identical models. One thread by
        # default: on a busy 2-core worker OpenMP's spinning threads made training 4x slower, not faster.
        # L1: the forecasts are judged by absolute errors (MAE, MASE, sMAPE), and it resists outliers; row and
        # feature subsampling regularise and cut the training time by about a third
        params = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "objective": "l1",
                  "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "verbosity": -1,
                  "random_state": self.seed, "deterministic": True, "force_row_wise": True, "n_jobs": 1}
        params.update(self.params)
        return lightgbm.LGBMRegressor(**params)


class RandomForestGlobal(RecursiveGlobalForecaster):
    name = "random_forest"
    settings_key = "random_forest"
    settings_model = EstimatorSettings

    def _estimator(self):
        from sklearn.ensemble import RandomForestRegressor

        params = {"n_estimators": 200, "min_samples_leaf": 5, "max_features": 0.5, "n_jobs": 1,
                  "random_state": self.seed}
        params.update(self.params)
        return RandomForestRegressor(**params)


class LinearGlobal(RecursiveGlobalForecaster):
    """Ridge regression on the lag features (missing early lags imputed with the training mean)."""

    name = "linear"
    settings_key = "linear"
    settings_model = EstimatorSettings

    def _estimator(self):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(),
                             Ridge(**{"alpha": 1.0, **self.params}))


def _trial_series(panel: pd.DataFrame) -> pd.DataFrame:
    """The rows of at most ``TRIAL_SERIES`` series of ``panel``, evenly spread over its sorted series ids."""
    ids = np.sort(panel[SERIES].unique())
    if len(ids) <= TRIAL_SERIES:
        return panel
    kept = ids[np.unique(np.linspace(0, len(ids) - 1, TRIAL_SERIES).round().astype(int))]
    return panel[panel[SERIES].isin(kept)].reset_index(drop=True)
