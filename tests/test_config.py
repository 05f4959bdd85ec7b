"""Configuration loading: every documented mistake produces a message naming where it is and what is wrong."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from forecasting.config import load_config, parse_config
from forecasting.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

VALID = {
    "name": "t",
    "series": [
        {"name": "a", "source": "sample", "params": {"dataset": "co2"}},
        {"name": "b", "source": "sample", "params": {"dataset": "macrodata", "column": "cpi"}, "role": "feature"},
    ],
    "preprocessing": {"horizon": 4, "target_lags": [1, 2], "feature_lags": [1]},
    "models": {"lightgbm": {"n_estimators": 10, "feature_fraction": 0.8}},
}


def _with(path: tuple, value) -> dict:
    raw = copy.deepcopy(VALID)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


def test_demo_config_loads():
    config = load_config(ROOT / "examples" / "demo.yaml")
    assert [s.name for s in config.series] == ["co2", "us_realgdp", "us_cpi", "us_unemployment"]
    assert config.preprocessing.horizon == 8
    assert config.tolerance(config.series[0]) == 1e-9


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("colour",), "red", "colour: unknown key"),
        (("series", 0, "colour"), "red", "series[0] (a).colour: unknown key"),
        (("preprocessing", "horizon"), "eight", "preprocessing.horizon: Input should be a valid integer"),
        (("preprocessing", "horizon"), 0, "preprocessing.horizon: Input should be greater than or equal to 1"),
        (("preprocessing", "target_lags"), [0, 1], "preprocessing.target_lags[0]: Input should be greater than 0"),
        (("preprocessing", "target_lags"), [1.5], "preprocessing.target_lags[0]: Input should be a valid integer"),
        (("preprocessing", "feature_lags"), [-2], "preprocessing.feature_lags[0]: Input should be greater than 0"),
        (("preprocessing", "target_lags"), [1, 1], "preprocessing.target_lags: lags must not repeat"),
        (("series", 1, "name"), "a", "- duplicate series name 'a' (series[0] and series[1])"),
        (
            ("series", 0, "source"),
            "ftp",
            "series[0] (a).source: unknown source 'ftp'; known sources: csv, google_trends, sample, yahoo_finance",
        ),
        (
            ("series", 0, "params"),
            {"dataset": "co3"},
            "series[0] (a).params.dataset: Input should be 'co2', 'macrodata', 'sunspots' or 'nile'",
        ),
        (("series", 0, "params"), {}, "series[0] (a).params.dataset: required key is missing"),
        (("series", 0, "role"), "label", "series[0] (a).role: Input should be 'target' or 'feature'"),
        (
            ("series", 0, "frequency"),
            "fortnightly",
            "series[0] (a).frequency: 'fortnightly' is not a pandas frequency alias",
        ),
        (
            ("models", "lightgbm"),
            {"n_trees_please": 3},
            "models.lightgbm: LGBMRegressor does not accept parameter(s) 'n_trees_please'",
        ),
        (("series",), [], "series: List should have at least 1 item"),
    ],
)
def test_each_mistake_has_its_message(path, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(_with(path, value))


def test_no_target_series_is_refused():
    raw = _with(("series", 0, "role"), "feature")
    with pytest.raises(ConfigError, match="no series has role 'target'"):
        parse_config(raw)


def test_feature_series_without_feature_lags_is_refused():
    raw = _with(("preprocessing", "feature_lags"), [])
    with pytest.raises(ConfigError, match=re.escape("series with role 'feature' need preprocessing.feature_lags")):
        parse_config(raw)


def test_all_problems_are_reported_together():
    raw = _with(("preprocessing", "horizon"), 0)
    raw["series"][0]["colour"] = "red"
    raw["models"]["lightgbm"]["bogus"] = 1
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    text = str(info.value)
    assert "3 problem(s)" in text
    assert "preprocessing.horizon" in text and "colour: unknown key" in text and "'bogus'" in text


def test_lightgbm_native_parameter_aliases_are_accepted():
    config = parse_config(_with(("models", "lightgbm"), {"bagging_fraction": 0.7, "subsample": 0.7, "eta": 0.1}))
    assert config.models.lightgbm["eta"] == 0.1


def test_csv_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "cfg.yaml").write_text(
        "name: t\nseries:\n  - {name: s, source: csv, params: {path: data/s.csv}}\n", encoding="utf-8"
    )
    config = load_config(tmp_path / "cfg.yaml")
    assert config.series[0].source_params().path == str(tmp_path / "data" / "s.csv")


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_config(bad)


def test_select_unknown_series_is_an_error():
    config = parse_config(VALID)
    assert [s.name for s in config.select(["b"])] == ["b"]
    with pytest.raises(ConfigError, match="series not in config 't': zz"):
        config.select(["zz"])


def test_trigger_overrides_are_validated_like_the_file():

    config = parse_config(VALID)
    assert config.with_overrides() is config
    changed = config.with_overrides(horizon=7, models=["naive"])
    assert (changed.preprocessing.horizon, changed.models.enabled) == (7, ["naive"])
    with pytest.raises(ConfigError, match=re.escape("t (trigger parameters)")) as info:
        config.with_overrides(horizon=0, models=["prophet"])
    assert "preprocessing.horizon" in str(info.value) and "models.enabled[0]" in str(info.value)


@pytest.mark.parametrize(("text", "key", "line", "first"), [
    ("schedule: '@daily'\nschedule: '@weekly'\n", "schedule", 4, 3),
    ("prediction:\n  levels: [80]\n  levels: [95]\n", "levels", 5, 4),
    ("prediction: {levels: [80], levels: [95]}\n", "levels", 3, 3),
])
def test_a_key_given_twice_is_refused_with_its_lines(tmp_path, text, key, line, first):
    """PyYAML keeps the last of two equal keys: one of two settings would be lost without a word."""
    path = tmp_path / "twice.yaml"
    path.write_text("name: t\nseries: [{name: a, source: sample, params: {dataset: co2}}]\n" + text, encoding="utf-8")
    message = (f"{path}: line {line}: the key {key!r} appears twice in one mapping (also on line {first}); keep one: "
               "YAML would silently use the last")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_a_merge_key_may_be_overridden(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("name: t\nseries:\n  - &co2 {name: a, source: sample, params: {dataset: co2}}\n"
                    "  - {<<: *co2, name: b}\n", encoding="utf-8")
    assert [s.name for s in load_config(path).series] == ["a", "b"]


@pytest.mark.parametrize("schedule", ["@daily", "@hourly", "@weekly", "@monthly", "@quarterly", "@yearly",
                                      "@annually", "0 6 * * 1", "*/15 * * * *", "0 0 * * tue", "0 0 L * *"])
def test_airflow_presets_and_cron_expressions_are_accepted(schedule):
    config = parse_config({**VALID, "schedule": schedule, "prediction": {"schedule": schedule}})
    assert config.schedule == config.prediction.schedule == schedule


def test_once_and_continuous_are_ingest_timetables_only():
    assert parse_config({**VALID, "schedule": "@once"}).schedule == "@once"
    assert parse_config({**VALID, "schedule": "@continuous"}).schedule == "@continuous"
    with pytest.raises(ConfigError, match=re.escape("prediction.schedule: '@once' is not a cron expression")):
        parse_config({**VALID, "prediction": {"schedule": "@once"}})


@pytest.mark.parametrize(("key", "schedule", "reason"), [
    ("schedule", "every tuesday", "Exactly 5, 6 or 7 columns"),
    ("schedule", "", "Exactly 5, 6 or 7 columns"),
    ("schedule", "@fortnightly", "Exactly 5, 6 or 7 columns"),
    ("prediction.schedule", "61 * * * *", "out of range"),
])
def test_an_invalid_cron_schedule_is_refused_when_the_config_is_read(tmp_path, key, schedule, reason):
    """Airflow refuses it only when it parses the DAG file; `forecasting run` used to accept it."""
    raw = {**VALID, "schedule": schedule} if key == "schedule" else {**VALID, "prediction": {"schedule": schedule}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert f"- {key}: {schedule!r} is not a cron expression (such as '0 6 * * 1') or one of @hourly" in str(info.value)
    assert reason in str(info.value)
    path = tmp_path / "cron.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: 1 problem(s) in the configuration:\n  - {key}: ")):
        load_config(path)
