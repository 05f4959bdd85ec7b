"""Configuration loading: every documented mistake produces a message naming where it is and what is wrong."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

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
    from forecasting.orchestration import with_overrides

    config = parse_config(VALID)
    assert with_overrides(config) is config
    changed = with_overrides(config, horizon=7, models=["naive"])
    assert (changed.preprocessing.horizon, changed.models.enabled) == (7, ["naive"])
    with pytest.raises(ConfigError, match=re.escape("t (trigger parameters)")) as info:
        with_overrides(config, horizon=0, models=["prophet"])
    assert "preprocessing.horizon" in str(info.value) and "models.enabled[0]" in str(info.value)
