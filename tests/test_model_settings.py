"""Models own their settings: each model declares its section of ``models`` and the settings model that parses it;
the config builds its sections from the registry, parses YAML as before and keeps no per-model classes."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import forecasting.config
from forecasting.config import load_config, parse_config
from forecasting.errors import ConfigError
from forecasting.models.arima import ArimaForecaster, ArimaSettings
from forecasting.models.base import Forecaster, ModelSettings
from forecasting.models.ensemble import EnsembleForecaster, EnsembleSettings
from forecasting.models.recursive import (
    _LGBM_ARGUMENTS,
    EstimatorSettings,
    LightGBMGlobal,
    LightGBMSettings,
    LinearGlobal,
    RandomForestGlobal,
    _lightgbm_parameter_names,
)
from forecasting.models.registry import MODELS, model_class, model_settings, settings_sections
from forecasting.models.statistical import EtsForecaster, EtsSettings, ThetaForecaster, ThetaSettings
from forecasting.tuning.search import searches

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.yaml"

# the models section of the "custom" fingerprints in tests/fixtures/model_settings.json: a setting of every section
CUSTOM = {"enabled": list(MODELS), "arima": {"order": [1, 1, 0], "seasonal": True, "max_points": 100},
          "ets": {"forms": ["ANN", "AAN"], "combine": "best"}, "theta": {"seasonal": False},
          "ensemble": {"members": ["theta", "ets"], "how": "mean"}, "linear": {"alpha": 2.0},
          "random_forest": {"n_estimators": 50}, "lightgbm": {"num_leaves": 7, "eta": 0.1}, "seed": 3,
          "tuned": {"lightgbm_global": {"params": {"num_leaves": 9}, "target_lags": [1, 2]}}}

BASE = {"name": "t", "series": [{"name": "a", "source": "sample", "params": {"dataset": "co2"}}]}


def _models(models) -> dict:
    return {**copy.deepcopy(BASE), "models": models}


def _configs() -> dict:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    return {"demo": load_config(DEMO),
            "custom": parse_config({**raw, "models": CUSTOM}, base_dir=DEMO.parent)}


@pytest.mark.parametrize("which", ["demo", "custom"])
def test_every_model_receives_what_it_received_before_the_models_owned_their_settings(which):
    # model_params feed the fingerprints: a difference here would register new versions of unchanged models
    expected = json.loads((ROOT / "tests" / "fixtures" / "model_settings.json").read_text(encoding="utf-8"))[which]
    config = _configs()[which]
    for name in MODELS:
        for has_exog in (False, True):
            try:
                got = model_settings(name, config, has_exog=has_exog)
            except ValueError as exc:  # the demo's ensemble has no candidate member among its enabled models
                got = repr(exc)
            assert json.dumps(got) == json.dumps(expected[f"{name}/{has_exog}"]), (name, has_exog)


def test_each_section_is_declared_by_its_model():
    assert {key: cls for key, cls in settings_sections().items()} == {
        "theta": ThetaForecaster, "ets": EtsForecaster, "linear": LinearGlobal, "random_forest": RandomForestGlobal,
        "lightgbm": LightGBMGlobal, "arima": ArimaForecaster, "ensemble": EnsembleForecaster}
    assert (ArimaForecaster.settings_model, EtsForecaster.settings_model, ThetaForecaster.settings_model,
            EnsembleForecaster.settings_model, LightGBMGlobal.settings_model) == (
        ArimaSettings, EtsSettings, ThetaSettings, EnsembleSettings, LightGBMSettings)
    assert LinearGlobal.settings_model is RandomForestGlobal.settings_model is EstimatorSettings
    config = parse_config(BASE)
    for name in MODELS:
        cls = model_class(name)
        settings = cls.settings(config)
        if cls.settings_key is None:
            assert settings is None
        else:  # a section left out of the file takes its model's defaults
            assert settings == cls.settings_model.model_validate({})
            assert getattr(config.models, cls.settings_key) is settings


def test_the_config_module_holds_no_model_settings():
    tree = ast.parse(Path(forecasting.config.__file__).read_text(encoding="utf-8"))
    classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    assert classes == {"_Strict", "StorageSettings", "SeriesConfig", "PreprocessingConfig", "ModelsConfig",
                       "ModelingSettings", "BacktestSettings", "PredictionSettings", "PipelineConfig", "_DuplicateKey",
                       "_UniqueKeyLoader"}
    assert "ModelsConfig" in forecasting.config.__all__
    assert set(forecasting.config.ModelsConfig.model_fields) == {"enabled", "seed", "tuned"}
    assert not any(isinstance(v, type) and issubclass(v, ModelSettings | EstimatorSettings)
                   for v in vars(forecasting.config).values())


def test_only_lightgbm_is_tunable_and_its_settings_model_says_so():
    assert [name for name in MODELS if model_class(name).tunable] == ["lightgbm_global"]
    assert LightGBMSettings.tunable and not EstimatorSettings.tunable


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"foo": {}}, "models.foo: unknown key"),
        ({"arima": {"orders": 1}}, "models.arima.orders: unknown key"),
        ({"arima": {"max_points": 5}}, "models.arima.max_points: Input should be greater than or equal to 10"),
        ({"ets": {"forms": []}}, "models.ets.forms: List should have at least 1 item after validation, not 0"),
        ({"ets": {"combine": "mean"}}, "models.ets.combine: Input should be 'best' or 'aicc_weights'"),
        ({"theta": {"alpha": 1}}, "models.theta.alpha: unknown key"),
        ({"ensemble": {"members": ["ensemble"]}}, "models.ensemble.members: the ensemble cannot be its own member"),
        ({"ensemble": {"members": ["nope"]}}, "models.ensemble.members[0]: unknown model 'nope'; known models: "),
        ({"lightgbm": {"n_trees_please": 3}}, "models.lightgbm: LGBMRegressor does not accept parameter(s) "
                                              "'n_trees_please'"),
        ({"lightgbm": [1]}, "models.lightgbm: Input should be a valid dictionary"),
        ({"lightgbm": {"search": {"space": {"leaves": [3]}}}},
         "models.lightgbm: search.space.leaves: LGBMRegressor does not accept this parameter"),
        ({"lightgbm": {"search": {}}}, "models.lightgbm: search: give a 'space' of parameter values, candidate "
                                       "'target_lags', or both"),
        ({"random_forest": {"search": {"space": {"a": [1]}}}},
         "models.random_forest: search: only models.lightgbm has a search for 'forecasting tune' so far"),
        ({"tuned": {"ets": {"params": {}}}}, "models.tuned: only lightgbm_global can be tuned, not ets"),
        ({"tuned": {"lightgbm_global": {"params": {"leaves": 3}}}},
         "models.tuned: LGBMRegressor does not accept parameter(s) 'leaves'"),
    ],
)
def test_a_section_mistake_has_the_message_it_had_in_the_config_module(models, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(_models(models))


def test_mistakes_in_several_sections_are_reported_together():
    with pytest.raises(ConfigError) as info:
        parse_config(_models({"enabled": ["naive", "naive"], "arima": {"x": 1}, "foo": 1, "lightgbm": {"bogus": 1},
                              "ets": {"forms": ["Q"]}}))
    text = str(info.value)
    assert "5 problem(s)" in text
    for part in ("models.enabled: models must not repeat", "models.arima.x: unknown key", "models.foo: unknown key",
                 "models.lightgbm: LGBMRegressor does not accept parameter(s) 'bogus'", "models.ets.forms[0]: "):
        assert part in text


def test_sections_reach_the_constructors_and_survive_overrides_and_copies():
    config = parse_config(_models({"ets": {"combine": "best", "forms": ["ANN"]}, "lightgbm": {"eta": 0.1},
                                   "enabled": ["ets", "lightgbm_global"]}))
    assert EtsForecaster.settings(config) == EtsSettings(combine="best", forms=["ANN"])
    assert model_settings("ets", config, has_exog=False)["combine"] == "best"
    assert config.models.lightgbm["eta"] == 0.1 and "eta" in config.models.lightgbm
    assert LightGBMGlobal.settings(config).estimator_params() == {"eta": 0.1}
    again = config.with_overrides(horizon=3)
    assert again.models.section("ets") == config.models.section("ets")
    assert again.models.model_dump() == config.models.model_dump()
    copied = config.models.model_copy(update={"ensemble": EnsembleSettings(how="mean")})
    assert copied.section("ensemble").how == "mean" and copied.section("ets") == config.models.section("ets")
    with pytest.raises(KeyError, match="no model declares the config section models.nope"):
        config.models.section("nope")


def test_the_search_lives_in_the_tunable_models_section():
    config = parse_config(_models({"lightgbm": {"num_leaves": 7, "search": {"space": {"num_leaves": [3, 7]}}}}))
    assert LightGBMGlobal.settings(config).estimator_params() == {"num_leaves": 7}
    found = searches(config)
    assert list(found) == ["lightgbm_global"] and found["lightgbm_global"].space == {"num_leaves": [3, 7]}
    assert searches(parse_config(BASE)) == {}


def test_lightgbm_constructor_arguments_are_checked_without_lightgbm():
    import lightgbm

    # the names checked without importing LightGBM are exactly LGBMRegressor's, all of which it accepts
    assert set(lightgbm.LGBMRegressor().get_params()) == _LGBM_ARGUMENTS
    assert _lightgbm_parameter_names() >= _LGBM_ARGUMENTS
    assert LightGBMSettings.unknown_parameters(["eta", "num_leaves", "bogus"]) == ["bogus"]


def _loaded_after(code: str) -> list[str]:
    probe = ("import sys\n" + code + "\nprint(sorted(m for m in ('yfinance', 'pytrends', 'statsmodels', "
             "'lightgbm', 'scipy', 'sklearn', 'psycopg') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().replace("'", '"'))


def test_reading_the_demo_config_imports_no_model_or_download_library():
    # the Airflow DAG file reads configs at parse time: the model classes are imported, their libraries are not
    assert _loaded_after("from forecasting.config import load_config\nload_config('examples/demo.yaml')") == []


def test_a_lightgbm_alias_loads_lightgbm_to_check_it():
    code = ("from forecasting.config import parse_config\n"
            f"parse_config({_models({'lightgbm': {'eta': 0.1}})!r})")
    assert "lightgbm" in _loaded_after(code)


def test_the_registry_module_imports_the_standard_library_only():
    tree = ast.parse((ROOT / "forecasting" / "models" / "registry.py").read_text(encoding="utf-8"))
    top = []
    for node in tree.body:  # module level, outside `if TYPE_CHECKING:`
        if isinstance(node, ast.Import):
            top.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top.append(node.module or "")
    assert all(name.split(".")[0] in sys.stdlib_module_names | {"__future__"} for name in top), top


def test_a_model_declares_its_section_and_settings_model_together():
    with pytest.raises(TypeError, match="declares settings_key and settings_model together"):
        type("Half", (Forecaster,), {"name": "half", "settings_key": "half", "fit": None, "predict": None})


def test_two_models_cannot_parse_one_section_differently():
    class Other(ModelSettings):
        alpha: float = 1.0

    class Clash(Forecaster):
        name = "clash"
        settings_key = "arima"
        settings_model = Other

    before = dict(MODELS)
    try:
        MODELS["clash"] = f"{__name__}:Clash"
        sys.modules[__name__].Clash = Clash
        with pytest.raises(TypeError, match="both declare the config section 'arima'"):
            settings_sections()
    finally:
        MODELS.clear()
        MODELS.update(before)
        del sys.modules[__name__].Clash
