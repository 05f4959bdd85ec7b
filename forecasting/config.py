"""The YAML pipeline configuration: which series to fetch, their roles, preprocessing and model settings.

Loading validates everything that can be checked without a network: unknown keys, types, lag and
horizon values, duplicate names, unknown sources and source parameters, and model settings (each model's section
of ``models`` is parsed by the settings model the model declares, ``forecasting.models``; LightGBM's checks its
parameter names). All problems are reported at once, each with its location in the file. Reading a config imports
no download library (yfinance, pytrends) and no model library (statsmodels, LightGBM) for the usual settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from forecasting.errors import ConfigError
from forecasting.frequency import Frequency
from forecasting.ingest.settings import IngestSettings
from forecasting.ingest.validation import ExpectationSpec
from forecasting.model_names import DEFAULT_MODELS, MODEL_NAMES
from forecasting.models.base import ModelName
from forecasting.sources import get_source, source_names
from forecasting.sources.base import SourceParams
from forecasting.tuning.settings import SearchSettings, TunedSettings

__all__ = [
    "MODEL_NAMES",
    "BacktestSettings",
    "IngestSettings",
    "PredictionSettings",
    "ModelingSettings",
    "ModelsConfig",
    "PipelineConfig",
    "PreprocessingConfig",
    "SeriesConfig",
    "StorageSettings",
    "SearchSettings",
    "TunedSettings",
    "load_config",
    "parse_config",
]

PositiveInt = Annotated[StrictInt, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Strict):
    # relative change below which a re-downloaded value counts as unchanged (float noise, not a revision)
    revision_tolerance: float = Field(default=1e-9, ge=0)




class SeriesConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=200)
    source: str
    params: dict[str, Any] = Field(default_factory=dict)
    role: Literal["target", "feature"] = "target"
    frequency: str | None = None
    unit: str | None = None
    missing_values: Literal["error", "drop"] = "error"
    revision_tolerance: float | None = Field(default=None, ge=0)
    expectations: list[ExpectationSpec] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in source_names():
            raise ValueError(f"unknown source {value!r}; known sources: {', '.join(source_names())}")
        return value

    @field_validator("frequency")
    @classmethod
    def _pandas_frequency(cls, value: str | None) -> str | None:
        if value is not None:
            Frequency.parse(value)  # its ValueError names the accepted aliases
        return value

    def effective_frequency(self, inferred: str | None) -> str | None:
        """The frequency the series is modelled at: the config's when it sets one, else the one inferred from
        its timestamps (None: neither)."""
        return self.frequency or inferred

    def source_params(self) -> SourceParams:
        """The parameters parsed by the source's own model (already checked when the config loaded)."""
        return get_source(self.source).params_model.model_validate(self.params)


class PreprocessingConfig(_Strict):
    horizon: Annotated[StrictInt, Field(ge=1)] = 1
    # "auto": frequency-aware lags, rolling windows and calendar fields capped by the series' lengths, and
    # target transforms chosen by a holdout (forecasting.models.defaults); a list or a bool overrides
    target_lags: list[PositiveInt] | Literal["auto"] = "auto"
    feature_lags: list[PositiveInt] = Field(default_factory=list)
    rolling_windows: list[Annotated[StrictInt, Field(ge=2)]] | Literal["auto"] = "auto"
    # 'ffill': reindex each series to its frequency and carry the last value into missing timestamps;
    # 'keep': leave gaps as they are (lags then count rows, not periods)
    missing_timestamps: Literal["ffill", "keep"] = "ffill"
    calendar: bool | Literal["auto"] = "auto"
    technical: bool = False  # moving-average ratio, RSI and MACD of the lagged target (price series)
    # applied per series before the global models, inverted on their forecasts
    target_transforms: list[Literal["diff", "sdiff", "scale"]] | Literal["auto"] = "auto"

    @field_validator("target_lags", "feature_lags", "rolling_windows")
    @classmethod
    def _distinct(cls, value: list[int] | str) -> list[int] | str:
        if isinstance(value, str):
            return value
        if len(set(value)) != len(value):
            raise ValueError("lags must not repeat")
        return sorted(value)

    @field_validator("target_lags")
    @classmethod
    def _some_lag(cls, value: list[int] | str) -> list[int] | str:
        if not isinstance(value, str) and not value:
            raise ValueError("target_lags needs at least one lag (or \"auto\")")
        return value


class ModelsConfig(_Strict):
    """``models``: which models run, the seed, the tuned parameters, and one section per model that declares one.

    The sections are the models' own: each registered model names its section and the pydantic model that parses
    it (``Forecaster.settings_key``, ``settings_model``), so this class holds no model's settings and a model
    registered by a plug-in gets its section too. A section not given takes its model's defaults; a key that no
    model declares is an unknown key. ``section(key)`` (or the attribute ``models.<key>``) is the parsed section.
    """

    model_config = ConfigDict(extra="allow", frozen=True)  # the sections; any other key is refused below

    enabled: list[ModelName] = Field(
        default_factory=lambda: list(DEFAULT_MODELS), min_length=1
    )
    seed: StrictInt = 0
    # the parameters 'forecasting tune' chose, per model: the planner fills this in from the database for a run
    # (only for models whose section still has a search), so every step and the registry see them
    tuned: dict[ModelName, TunedSettings] = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _model_sections(cls, data: Any, handler: Any) -> ModelsConfig:
        if not isinstance(data, dict):
            return handler(data)
        from forecasting.models.registry import settings_sections

        sections = settings_sections()
        errors: list[dict] = []
        parsed: dict[str, Any] = {}
        for key, model in sections.items():
            try:
                parsed[key] = model.settings_model.model_validate(data.get(key, {}))
            except ValidationError as exc:
                errors.extend({**item, "loc": (key, *item["loc"])} for item in exc.errors())
        errors.extend({"type": "extra_forbidden", "loc": (key,), "input": value} for key, value in data.items()
                      if key not in cls.model_fields and key not in sections)
        result = None
        try:
            result = handler({**{k: v for k, v in data.items() if k in cls.model_fields}, **parsed})
        except ValidationError as exc:
            errors = [*exc.errors(), *errors]
        if errors:
            details = [{k: item[k] for k in ("type", "loc", "input", "ctx") if k in item} for item in errors]
            raise ValidationError.from_exception_data(cls.__name__, details)  # type: ignore[arg-type]
        return result

    @field_validator("enabled")
    @classmethod
    def _distinct_models(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("models must not repeat")
        return value

    @field_validator("tuned")
    @classmethod
    def _tunable_models_only(cls, value: dict[str, TunedSettings]) -> dict[str, TunedSettings]:
        from forecasting.models.registry import MODELS, model_class

        others = sorted(name for name in value if not model_class(name).tunable)
        if others:
            tunable = [name for name in MODELS if model_class(name).tunable]
            raise ValueError(f"only {', '.join(tunable) or 'no model'} can be tuned, not {', '.join(others)}")
        for name, tuned in value.items():
            settings_model = model_class(name).settings_model
            unknown = getattr(settings_model, "unknown_parameters", lambda names: [])(tuned.params)
            if unknown:
                raise ValueError(f"{settings_model.estimator} does not accept parameter(s) "
                                 f"{', '.join(map(repr, unknown))}")
        return value

    def section(self, key: str) -> Any:
        """The parsed section ``key`` (its model's ``settings_model``)."""
        try:
            return self.model_extra[key]
        except KeyError:
            raise KeyError(f"no model declares the config section models.{key}") from None


class ModelingSettings(_Strict):
    # targets of one frequency are split into partitions of at most this many series, in config order; each
    # partition is one Airflow task per step with its own global models. 1000 series of a few hundred points
    # keep a partition's training task under about 1 GB (benchmarks/scale.py measures it).
    partition_size: Annotated[StrictInt, Field(ge=1)] = 1000
    # processes the per-series models (arima, ets, theta, naive2) fit series on; None: every core
    n_jobs: Annotated[StrictInt, Field(ge=1)] | None = None


class BacktestSettings(_Strict):
    # auto: per partition, as many windows as its history allows (forecasting.backtesting.folds.auto_windows)
    n_windows: Annotated[StrictInt, Field(ge=1)] | Literal["auto"] = "auto"
    step: Annotated[StrictInt, Field(ge=1)] | None = None  # default: the horizon
    refit: bool = True
    # 'latest' cuts today's data at each origin; 'as_known' uses the data as first known at the origin
    modes: list[Literal["latest", "as_known"]] = Field(default_factory=lambda: ["latest", "as_known"], min_length=1)
    champion_metric: Literal["mase", "smape", "mae", "rmse"] = "mase"
    # how a series' champion is chosen from the backtest windows: per_series (its own lowest mean score),
    # robust (its own best only where it beats the pooled best model in every window and clearly on average),
    # pooled (one model for every series), or auto: per partition, the simplest of the three whose score on windows
    # it was not chosen on (leave one window out) is within one standard error of the best one's
    champion_strategy: Literal["auto", "per_series", "robust", "pooled"] = "auto"


class PredictionSettings(_Strict):
    levels: list[Annotated[StrictInt, Field(gt=0, lt=100)]] = Field(default_factory=lambda: [80, 95])
    explain_top_k: Annotated[StrictInt, Field(ge=0)] = 5
    artifact_dir: str | None = None  # keep pickled models here instead of in the database
    # cron expression or preset: the predict DAG also runs on it, besides after each training
    schedule: str | None = None


class PipelineConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    description: str | None = None
    schedule: str | None = None
    series: list[SeriesConfig] = Field(min_length=1)
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    modeling: ModelingSettings = Field(default_factory=ModelingSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    prediction: PredictionSettings = Field(default_factory=PredictionSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)

    @model_validator(mode="after")
    def _unique_names_and_a_target(self) -> PipelineConfig:
        seen: dict[str, int] = {}
        for index, series in enumerate(self.series):
            if series.name in seen:
                raise ValueError(
                    f"duplicate series name {series.name!r} (series[{seen[series.name]}] and series[{index}])"
                )
            seen[series.name] = index
        if not any(s.role == "target" for s in self.series):
            raise ValueError("no series has role 'target': at least one series must be forecast")
        if any(s.role == "feature" for s in self.series) and not self.preprocessing.feature_lags:
            raise ValueError("series with role 'feature' need preprocessing.feature_lags (e.g. [1]): "
                             "a feature enters the models only through its lags")
        return self

    def series_with_role(self, role: str) -> list[SeriesConfig]:
        return [s for s in self.series if s.role == role]

    def select(self, names: list[str] | None) -> list[SeriesConfig]:
        """The configured series, or only ``names`` (each must exist)."""
        if not names:
            return list(self.series)
        by_name = {s.name: s for s in self.series}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ConfigError(f"series not in config {self.name!r}: {', '.join(missing)}")
        return [by_name[n] for n in names]

    def with_overrides(self, *, horizon: int | None = None, models: list[str] | None = None) -> PipelineConfig:
        """The config with a trigger's horizon and model list (CLI flags, Airflow trigger parameters), validated
        like the file itself; itself when neither is given."""
        if horizon is None and not models:
            return self
        raw = self.model_dump(mode="json")
        if horizon is not None:
            raw["preprocessing"]["horizon"] = horizon
        if models:
            raw["models"]["enabled"] = list(models)
        return parse_config(raw, origin=f"{self.name} (trigger parameters)")

    def tolerance(self, series: SeriesConfig) -> float:
        if series.revision_tolerance is not None:
            return series.revision_tolerance
        return self.storage.revision_tolerance


def _location(loc: tuple, raw: dict) -> str:
    parts: list[str] = []
    series = raw.get("series") if isinstance(raw, dict) else None
    for i, item in enumerate(loc):
        if isinstance(item, int):
            label = f"[{item}]"
            if i > 0 and loc[i - 1] == "series" and isinstance(series, list) and item < len(series):
                entry = series[item]
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    label += f" ({entry['name']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "config"


_BRANCH_TAGS = ("list[", "literal[", "bool")


def _is_branch_tag(part: object) -> bool:
    # pydantic names the member of a union (list[...] | "auto", bool | "auto") that failed inside the location
    return isinstance(part, str) and part.startswith(_BRANCH_TAGS)


def _without_auto_branch(errors: list[dict]) -> list[dict]:
    """Errors of a ``list | "auto"`` field: keep the list's own complaint, drop "Input should be 'auto'"."""
    fields = {item["loc"][:i] for item in errors for i, p in enumerate(item["loc"])
              if _is_branch_tag(p) and not str(p).startswith("literal[")}
    kept = []
    for item in errors:
        tags = [i for i, p in enumerate(item["loc"]) if _is_branch_tag(p)]
        if tags and str(item["loc"][tags[0]]).startswith("literal[") and item["loc"][:tags[0]] in fields:
            continue
        kept.append({**item, "loc": tuple(p for p in item["loc"] if not _is_branch_tag(p))})
    return kept


def _messages(error: ValidationError, raw: dict, prefix: tuple = ()) -> list[str]:
    out = []
    for item in _without_auto_branch(error.errors()):
        loc = _location(prefix + tuple(item["loc"]), raw)
        if item["type"] == "extra_forbidden":
            out.append(f"{loc}: unknown key")
        elif item["type"] == "missing":
            out.append(f"{loc}: required key is missing")
        else:
            message = item["msg"].removeprefix("Value error, ")
            out.append(f"{loc}: {message}" if item["loc"] or prefix else message)
    return out


def _source_param_messages(raw: dict) -> list[str]:
    problems: list[str] = []
    series = raw.get("series") if isinstance(raw, dict) else None
    if not isinstance(series, list):
        return problems
    for index, entry in enumerate(series):
        if not isinstance(entry, dict) or entry.get("source") not in source_names():
            continue
        params = entry.get("params", {})
        if not isinstance(params, dict):
            continue
        try:
            get_source(entry["source"]).params_model.model_validate(params)
        except ValidationError as exc:
            problems.extend(_messages(exc, raw, prefix=("series", index, "params")))
    return problems


def _prepare_source_params(raw: dict, base_dir: Path) -> dict:
    """Let each source adjust its raw parameters (CSV paths become relative to the config file)."""
    series = raw.get("series")
    if not isinstance(series, list):
        return raw
    prepared = []
    for entry in series:
        if isinstance(entry, dict) and entry.get("source") in source_names() and isinstance(entry.get("params"), dict):
            params = get_source(entry["source"]).prepare_params(entry["params"], base_dir=base_dir)
            entry = {**entry, "params": params}
        prepared.append(entry)
    return {**raw, "series": prepared}


# what Airflow's CronTriggerTimetable resolves before handing an expression to croniter (airflow.utils.dates
# cron_presets, kept in sync with the task SDK's CRON_PRESETS)
_CRON_PRESETS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *",
                 "@quarterly": "0 0 1 */3 *", "@yearly": "0 0 1 1 *"}


def _schedule_messages(raw: dict) -> list[str]:
    """The schedules Airflow would refuse, checked as its CronTriggerTimetable.validate() does (croniter): Airflow
    checks them only when it parses the DAG file, long after `forecasting run` accepted the config."""
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter

    prediction = raw.get("prediction")
    # the ingest DAG takes `schedule` as @dag(schedule=...), where @once and @continuous are timetables of their
    # own; the predict DAG puts prediction.schedule in a CronTriggerTimetable, which takes cron only
    found = [("schedule", raw.get("schedule"), ("@once", "@continuous")),
             ("prediction.schedule", prediction.get("schedule") if isinstance(prediction, dict) else None, ())]
    problems = []
    for where, value, timetables in found:
        if not isinstance(value, str) or value in timetables:
            continue  # None means unscheduled; another type is pydantic's to report
        try:
            croniter(_CRON_PRESETS.get(value, value))
        except (CroniterBadCronError, CroniterBadDateError) as exc:
            problems.append(f"{where}: {value!r} is not a cron expression (such as '0 6 * * 1') or one of "
                            f"{', '.join([*_CRON_PRESETS, *timetables])}: {exc}")
    return problems


def parse_config(raw: Any, *, origin: str = "config", base_dir: Path | None = None) -> PipelineConfig:
    """Validate an already-parsed YAML document; raises ConfigError listing every problem.

    ``base_dir`` is where relative file paths in source parameters are resolved from (default: cwd).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = _prepare_source_params(raw, base_dir or Path.cwd())
    problems: list[str] = []
    config = None
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_messages(exc, raw))
    problems.extend(_source_param_messages(raw))
    problems.extend(_schedule_messages(raw))
    if problems:
        listing = "\n  - ".join(problems)
        raise ConfigError(f"{origin}: {len(problems)} problem(s) in the configuration:\n  - {listing}")
    assert config is not None
    return config


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, line: int, first_line: int) -> None:
        super().__init__(f"line {line}: the key {key!r} appears twice in one mapping (also on line {first_line}); "
                         "keep one: YAML would silently use the last")


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping: PyYAML keeps the last, so a setting written
    twice (a `schedule` near the top and another further down) would silently lose one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` merges keys that the mapping's own may override
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in first:
                    raise _DuplicateKey(key, line, first[key])
                first[key] = line
            except TypeError:
                continue  # an unhashable key: the loader reports it itself
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a YAML pipeline configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(raw, origin=str(path), base_dir=path.resolve().parent)
