"""Hyperparameter search by backtest: the search spec, the trials, and the parameters later runs train with."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from forecasting.backtesting.folds import make_folds
from forecasting.cli import main as cli_main
from forecasting.config import parse_config
from forecasting.errors import ConfigError
from forecasting.run import execute
from forecasting.store.selectors import panel_read, stored_series
from forecasting.tuning.search import candidates
from forecasting.tuning.settings import SearchSettings

WEEKS = 80
HORIZON = 4
SEARCH = {"method": "grid", "space": {"num_leaves": [3, 7], "learning_rate": [0.3]},
          "target_lags": [[1], [1, 2, 3, 4]]}


def _raw(tmp_path, search: dict | None = SEARCH) -> dict:
    series = []
    for i in range(2):
        rng = np.random.default_rng(i)
        t = np.arange(WEEKS)
        values = 100 * (i + 1) + 5 * np.sin(2 * np.pi * t / 13) + rng.normal(0, 1, WEEKS).cumsum()
        path = tmp_path / f"s{i}.csv"
        ts = pd.date_range("2020-01-05", periods=WEEKS, freq="W-SUN")
        pd.DataFrame({"ts": ts.strftime("%Y-%m-%d"), "value": values.round(4)}).to_csv(path, index=False)
        series.append({"name": f"s{i}", "source": "csv", "params": {"path": str(path)}})
    lightgbm = {"n_estimators": 15, "min_child_samples": 5}
    if search is not None:
        lightgbm["search"] = search
    return {"name": "tuned", "series": series,
            "preprocessing": {"horizon": HORIZON, "target_lags": [1, 2], "rolling_windows": [],
                              "calendar": False, "target_transforms": ["scale"]},
            "models": {"enabled": ["naive", "lightgbm_global"], "lightgbm": lightgbm},
            "backtest": {"n_windows": 2, "modes": ["latest"]}, "ingest": {"retries": 0}}


@pytest.mark.parametrize(("search", "expected"), [
    ({"method": "bayes", "space": {"num_leaves": [3]}}, "models.lightgbm: search.method: Input should be"),
    ({"space": {"num_leafs": [3, 7]}}, "search.space.num_leafs: LGBMRegressor does not accept this parameter"),
    ({"space": {"num_leaves": []}}, "search.space.num_leaves: List should have at least 1 item"),
    ({"target_lags": [[1, 1]]}, "search.target_lags: lags must not repeat within a candidate: [1, 1]"),
    ({"trials": 5}, "search: give a 'space' of parameter values, candidate 'target_lags', or both"),
    ({"space": {"num_leaves": [3]}, "budget": 3}, "search.budget: unknown key"),
])
def test_an_invalid_search_is_refused_naming_the_key(tmp_path, search, expected):
    with pytest.raises(ConfigError) as caught:
        parse_config(_raw(tmp_path, search))
    assert f"models.lightgbm: {expected.removeprefix('models.lightgbm: ')}" in str(caught.value)


def test_tuned_parameters_are_validated_like_the_settings(tmp_path):
    raw = _raw(tmp_path)
    raw["models"]["tuned"] = {"lightgbm_global": {"params": {"num_leafs": 3}}}
    with pytest.raises(ConfigError, match=r"models\.tuned: LGBMRegressor does not accept parameter\(s\) 'num_leafs'"):
        parse_config(raw)
    raw["models"]["tuned"] = {"arima": {"params": {}}}
    with pytest.raises(ConfigError, match="only lightgbm_global can be tuned, not arima"):
        parse_config(raw)


def test_only_lightgbm_has_a_search(tmp_path):
    raw = _raw(tmp_path)
    raw["models"]["random_forest"] = {"search": {"space": {"max_depth": [3]}}}
    with pytest.raises(ConfigError, match=r"models\.random_forest: search: only models\.lightgbm"):
        parse_config(raw)


def test_grid_covers_every_combination_and_random_draws_distinct_ones_reproducibly():
    grid = SearchSettings(method="grid", space={"a": [1, 2], "b": [3, 4, 5]}, target_lags=[[1], [1, 2]])
    combos = [(c.params["a"], c.params["b"], tuple(c.target_lags)) for c in candidates(grid)]
    assert len(combos) == 12 == len(set(combos))
    assert len(candidates(grid, trials=5)) == 5
    drawn = SearchSettings(method="random", trials=4, seed=7, space={"a": list(range(100)), "b": list(range(100))})
    first = [c.params for c in candidates(drawn)]
    assert first == [c.params for c in candidates(drawn)] and len({tuple(p.values()) for p in first}) == 4
    assert len(candidates(SearchSettings(method="random", trials=50, space={"a": [1, 2]}))) == 2


def test_tune_stores_ranked_trials_and_the_next_train_uses_the_best(database, conn, tmp_path, capsys, monkeypatch):
    raw = _raw(tmp_path)
    config = parse_config(raw)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    assert cli_main(["-q", "ingest", "--config", str(tmp_path / "p.yaml")]) == 0
    assert cli_main(["-q", "tune", "--config", str(tmp_path / "p.yaml"), "--trials", "3"]) == 0
    out = capsys.readouterr().out
    assert "lightgbm_global: trials of tune run" in out and "trial" in out and "chosen" in out

    run_id, command, status = conn.execute("SELECT run_id, command, status FROM pipeline_runs").fetchone()
    assert (command, status) == ("tune", "succeeded")
    trials = conn.execute("SELECT trial, params, target_lags, metric, score, metrics, cutoffs, n_forecasts, seconds "
                          "FROM tuning_trials WHERE run_id = %s ORDER BY trial", (run_id,)).fetchall()
    # --trials 3 caps the grid of 4 at its first 3 combinations, in the grid's order
    assert [(t[1], t[2]) for t in trials] == [({"learning_rate": 0.3, "num_leaves": 3}, [1]),
                                              ({"learning_rate": 0.3, "num_leaves": 3}, [1, 2, 3, 4]),
                                              ({"learning_rate": 0.3, "num_leaves": 7}, [1])]
    for _, _, _, metric, score, metrics, _, n_forecasts, seconds in trials:
        assert metric == "mase" and score == pytest.approx(metrics["mase"]) and score > 0
        assert n_forecasts == 2 * 2 * HORIZON and seconds > 0  # series x windows x steps

    # scored on the configured rolling-origin windows only: the cutoffs are the backtest's, and every forecast
    # of the last window ends at the last stored point, never past it
    stored = stored_series(conn, keys=[("csv", "s0"), ("csv", "s1")])
    panel = panel_read(conn, series_ids=[s.series_id for s in stored.values()])
    folds = make_folds(panel, freq="W-SUN", horizon=HORIZON, n_windows=2)
    expected = sorted(f.cutoff.isoformat() for f in folds)
    assert all(t[6] == expected for t in trials)
    assert max(pd.Timestamp(c) for c in expected) == panel["ts"].max() - pd.Timedelta(weeks=HORIZON)

    best = min(trials, key=lambda t: (t[4], t[0]))
    chosen = conn.execute("SELECT model, params, target_lags, run_id, trial, score FROM tuned_parameters "
                          "WHERE config_name = 'tuned'").fetchone()
    assert chosen == ("lightgbm_global", best[1], best[2], run_id, best[0], best[4])
    view = conn.execute("SELECT trial, chosen FROM v_tuning_trials WHERE run_id = %s AND rank = 1",
                        (run_id,)).fetchall()
    assert view == [(best[0], True)]

    # the next train applies the tuned parameters over the config's and records them with the model version
    report = execute(database, config, command="train")
    assert report.status == "succeeded"
    params, = conn.execute(
        "SELECT v.params FROM model_versions v JOIN models m USING (model_id) "
        "WHERE m.name = 'lightgbm_global' AND v.run_id = %s", (report.run_id,)).fetchone()
    settings = params["model"]  # what the model's constructor received
    assert settings["params"] == {"n_estimators": 15, "min_child_samples": 5, **best[1]}
    assert settings["spec"]["lags"] == best[2]
    assert settings["tuned"]["tune_run_id"] == run_id and settings["tuned"]["trial"] == best[0]
    run_config, = conn.execute("SELECT config FROM pipeline_runs WHERE run_id = %s", (report.run_id,)).fetchone()
    assert json.loads(json.dumps(run_config))["models"]["tuned"]["lightgbm_global"]["params"] == best[1]


def test_a_failing_trial_is_stored_and_without_its_search_a_model_trains_with_the_configs_own_settings(
        database, conn, tmp_path):
    from forecasting.ingest.pipeline import ingest
    from forecasting.tuning.tune import tune

    # LightGBM refuses num_leaves=1 when fitting: that trial fails, is stored with its error, and loses
    config = parse_config(_raw(tmp_path, {"method": "grid", "space": {"num_leaves": [1, 3]}}))
    ingest(database, config)
    report = tune(database, config)
    assert report.status == "succeeded" and report.chosen == {"lightgbm_global": 2}
    failed = conn.execute("SELECT score, error FROM tuning_trials WHERE trial = 1").fetchone()
    assert failed[0] is None and "num_leaves" in failed[1]
    train = execute(database, parse_config(_raw(tmp_path, None)), command="train")
    params, = conn.execute(
        "SELECT v.params FROM model_versions v JOIN models m USING (model_id) "
        "WHERE m.name = 'lightgbm_global' AND v.run_id = %s", (train.run_id,)).fetchone()
    assert params["model"]["params"] == {"n_estimators": 15, "min_child_samples": 5}
    assert params["model"]["tuned"] is None


def test_tune_without_a_search_is_refused(database, tmp_path):
    from forecasting.tuning.tune import tune

    with pytest.raises(ConfigError, match="add models.lightgbm.search"):
        tune(database, parse_config(_raw(tmp_path, None)))
