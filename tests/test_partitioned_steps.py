"""Modeling as partitioned steps, on the real embedded PostgreSQL: partitions, fault isolation per series,
prediction that never trains, and the records each step leaves."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.frequency import Frequency
from forecasting.run import execute
from forecasting.steps.partitions import split_partitions
from forecasting.steps.screen import backtest_spec, model_skips, screen_series
from forecasting.store.jsonsafe import json_dumps

DAYS = 120


def _csv(tmp_path, name: str, values) -> str:
    ts = pd.date_range("2024-01-01", periods=len(values), freq="D").strftime("%Y-%m-%d")
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"ts": ts, "value": values}).to_csv(path, index=False)
    return str(path)


def _good(seed: int) -> np.ndarray:
    t = np.arange(DAYS)
    return (100 + 5 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(seed).normal(0, 1, DAYS).cumsum()).round(3)


def _config(tmp_path, series: dict, **overrides) -> dict:
    raw = {
        "name": "steps",
        "series": [{"name": n, "source": "csv", "params": {"path": _csv(tmp_path, n, v)}} for n, v in series.items()],
        "preprocessing": {"horizon": 7, "target_lags": [1, 2, 7]},
        "models": {"enabled": ["naive", "seasonal_naive", "lightgbm_global"],
                   "lightgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5}},
        "backtest": {"n_windows": 2, "modes": ["latest"]},
        "prediction": {"levels": [80], "explain_top_k": 2},
        "ingest": {"retries": 0},
    }
    raw.update(overrides)
    return raw


def test_partitions_are_balanced_stable_and_per_frequency():
    targets = [(i, "D") for i in range(1, 1002)] + [(5000, "W-SUN")]
    parts = split_partitions(targets, 1000)
    assert [(p.key, len(p.series_ids)) for p in parts] == [("D:1/2", 501), ("D:2/2", 500), ("W-SUN:1/1", 1)]
    assert parts[0].series_ids == tuple(range(1, 502))  # config order, consecutive
    assert split_partitions(targets, 1000) == parts  # the same config gives the same assignment
    assert parts[1].label == "D partition 2 of 2 (500 series)"
    with pytest.raises(ValueError, match="at least 1"):
        split_partitions(targets, 0)


def test_screening_names_each_reason(tmp_path):
    config = parse_config(_config(tmp_path, {"a": _good(0)}))
    panel = pd.concat([
        pd.DataFrame({"series": 1, "ts": pd.date_range("2024-01-01", periods=DAYS), "y": _good(1)}),
        pd.DataFrame({"series": 2, "ts": pd.date_range("2024-01-01", periods=DAYS), "y": 3.0}),
        pd.DataFrame({"series": 3, "ts": pd.date_range("2024-01-01", periods=5), "y": [1.0, 2, 3, 4, 5]}),
        pd.DataFrame({"series": 4, "ts": pd.date_range("2024-01-01", periods=DAYS), "y": np.r_[_good(2)[:-1], 1e308]}),
    ], ignore_index=True)
    kept, skips = screen_series(panel, config, Frequency.parse("D"))
    # 5 points are enough for naive: only a model that needs more leaves the short series out
    assert kept["series"].unique().tolist() == [1, 3]
    reasons = {s.series_id: s.reason for s in skips}
    assert reasons[2].startswith("constant series (every value is 3)")
    assert reasons[4].startswith("values too large to model (max |y| = 1e+308")
    spec = backtest_spec(config, Frequency.parse("D"), kept.groupby("series").size())
    by_model = {s.model: s.reason for s in model_skips(kept.groupby("series").size(), spec) if s.series_id == 3}
    assert by_model == {
        "lightgbm_global": "too short for lightgbm_global: 5 points, needs 8",
        "naive": "no backtest: too short (5 points, needs 8 for one window of 7); forecast without a backtest score",
        "seasonal_naive": "no backtest: too short (5 points, needs 8 for one window of 7); forecast without a "
                          "backtest score"}
    empty = pd.DataFrame({"series": 5, "ts": pd.date_range("2024-01-01", periods=1), "y": [1.0]})
    lagged = parse_config(_config(tmp_path, {"a": _good(0)}, models={"enabled": ["lightgbm_global"]}))
    _, skips = screen_series(empty, lagged, Frequency.parse("D"))
    assert skips[0].reason == "too short: 1 points, every enabled model needs more (lightgbm_global 8)"


def test_explicit_windows_are_kept_and_auto_follows_the_partition_history(tmp_path):
    panel = pd.DataFrame({"series": 1, "ts": pd.date_range("2024-01-01", periods=DAYS), "y": _good(1)})
    daily = Frequency.parse("D")

    def windows(frame, config):
        return backtest_spec(config, daily, frame.groupby("series").size()).n_windows

    explicit = parse_config(_config(tmp_path, {"a": _good(0)}))
    assert windows(panel, explicit) == 2
    auto = parse_config(_config(tmp_path, {"a": _good(0)}, backtest={"n_windows": "auto", "modes": ["latest"]}))
    assert windows(panel, auto) == 3  # 120 daily points: the cap
    assert windows(panel.head(30), auto) == 2  # 30 - 2 * 7 = 16 points: two windows of 7
    # lightgbm_global: lags up to 7 and the "auto" rolling windows 7 and 28 of 120-point daily series
    assert backtest_spec(auto, daily, panel.groupby("series").size()).min_train == {
        "naive": 1, "seasonal_naive": 1, "lightgbm_global": 29}


def test_auto_windows_differ_between_partitions_and_every_step_agrees(database, tmp_path, conn, caplog):
    raw = _config(tmp_path, {"long": _good(0), "short": _good(1)[:30]},
                  backtest={"n_windows": "auto", "modes": ["latest"]}, modeling={"partition_size": 1})
    with caplog.at_level(logging.INFO, logger="forecasting.steps.data"):
        report = execute(database, parse_config(raw), command="run")
    assert report.errors == {} and report.skips.empty
    keys = {"long": "D:1/2", "short": "D:2/2"}
    summaries = dict(conn.execute("SELECT partition_key, summary->'n_windows' FROM run_steps "
                                  "WHERE run_id = %s AND step = 'backtest'", (report.run_id,)).fetchall())
    assert summaries == {keys["long"]: 3, keys["short"]: 2}
    stored = dict(conn.execute(
        "SELECT s.name, array_agg(DISTINCT b.window_no ORDER BY b.window_no) FROM backtest_forecasts b "
        "JOIN series s USING (series_id) WHERE b.run_id = %s GROUP BY s.name", (report.run_id,)).fetchall())
    assert stored == {"long": [0, 1, 2], "short": [0, 1]}
    # every step that loads a partition resolved the same number from the same screened panel
    for name, windows in (("long", 3), ("short", 2)):
        found = re.findall(rf"{re.escape(keys[name])} \((\w+)\): (\d+) backtest window", caplog.text)
        assert {step for step, _ in found} == {"features", "backtest", "train", "predict"}
        assert {int(n) for _, n in found} == {windows}


def test_non_finite_numbers_become_json_null():
    assert json.loads(json_dumps({"mase": float("nan"), "x": [float("-inf"), np.float64(2.5)], 3: np.int64(4)})) == \
        {"mase": None, "x": [None, 2.5], "3": 4}


def test_good_constant_and_short_series_forecast_what_each_model_can_and_name_the_rest(database, tmp_path, conn, capsys,
                                                                                 monkeypatch):
    from forecasting.cli import main as cli_main

    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    raw = _config(tmp_path, {"good": _good(0), "flat": np.full(DAYS, 42.0), "short": [1.0, 2.0, 4.0, 3.0, 5.0],
                             "huge": np.r_[_good(3)[:-1], 1e308]})
    path = tmp_path / "steps.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert cli_main(["-q", "run", "--config", str(path)]) == 1  # partial: not a clean success
    out = capsys.readouterr().out
    assert "ingest run 1 partial: 3 new, 1 quarantined" in out  # 1e308 never reaches the store (±1e30 at ingest)
    assert "pipeline run 1 partial (1 partition(s))" in out
    skipped = out[out.index("series skipped, and why"):].splitlines()
    rows = {line.split()[0]: line for line in skipped[3:4]}
    assert set(rows) == {"flat"}
    assert "constant series (every value is 42)" in rows["flat"]

    # 5 points: too short for lightgbm_global (lags up to 7) and for a backtest window, not for the baselines
    published = dict(conn.execute("SELECT series_name, count(*) FROM champion_forecasts GROUP BY 1").fetchall())
    assert published == {"good": 7, "short": 7}
    champion = conn.execute("SELECT c.model, c.score FROM champions c JOIN series s USING (series_id) "
                            "WHERE s.name = 'short'").fetchone()
    assert champion[0] in ("naive", "seasonal_naive") and champion[1] is None
    reasons = dict(conn.execute("SELECT k.model, k.reason FROM series_skips k JOIN series s USING (series_id) "
                                "WHERE s.name = 'short'").fetchall())
    assert reasons["lightgbm_global"] == "too short for lightgbm_global: 5 points, needs 8"
    assert reasons["naive"].startswith("no backtest: too short (5 points, needs 8 for one window of 7)")
    status, summary = conn.execute("SELECT status, summary FROM pipeline_runs WHERE run_id = 1").fetchone()
    assert status == "partial" and summary["skipped_series"] == ["flat"]
    # no metric of a skipped series was ever computed, and no stored metric is NaN/inf
    assert conn.execute("SELECT count(*) FROM backtest_metrics WHERE value = 'NaN' OR value = 'Infinity' "
                        "OR value = '-Infinity'").fetchone()[0] == 0


def test_predict_with_another_horizon_loads_the_trained_models_and_creates_no_version(database, tmp_path, conn,
                                                                                     capsys, monkeypatch):
    from forecasting.cli import main as cli_main

    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    path = tmp_path / "steps.yaml"
    path.write_text(json.dumps(_config(tmp_path, {"a": _good(0), "b": _good(1)})), encoding="utf-8")
    assert cli_main(["-q", "ingest", "--config", str(path)]) == 0
    assert cli_main(["-q", "predict", "--config", str(path)]) == 1  # nothing trained yet
    out = capsys.readouterr().out
    assert "partition D:1/1 of 'steps': no trained model version for model(s) naive, seasonal_naive, " \
           "lightgbm_global" in out
    assert cli_main(["-q", "run", "--config", str(path)]) == 0
    versions = conn.execute("SELECT array_agg(model_version_id ORDER BY 1) FROM model_versions").fetchone()[0]
    capsys.readouterr()
    assert cli_main(["-q", "predict", "--config", str(path), "--horizon", "30"]) == 0
    counts = capsys.readouterr().out
    table = counts[counts.index("per model"):].splitlines()[3:6]
    assert [line.split() for line in table] == [[m, "1", "2", "60", "30"] for m in
                                                ("lightgbm_global", "naive", "seasonal_naive")]
    assert conn.execute("SELECT array_agg(model_version_id ORDER BY 1) FROM model_versions").fetchone()[0] == versions
    run_id, steps = conn.execute("SELECT run_id, max(step) FROM forecasts GROUP BY run_id ORDER BY run_id DESC "
                                 "LIMIT 1").fetchone()
    assert steps == 30
    used = {r[0] for r in conn.execute("SELECT DISTINCT model_version_id FROM forecasts WHERE run_id = %s",
                                       (run_id,)).fetchall()}
    assert used == set(versions)
    # SHAP explanations of every LightGBM forecast, and the champion view shows this run's 30 steps
    explained = conn.execute("SELECT count(DISTINCT (series_id, ts)) FROM forecast_explanations WHERE run_id = %s",
                             (run_id,)).fetchone()[0]
    assert explained == 2 * 30
    assert conn.execute("SELECT max(step) FROM champion_forecasts").fetchone()[0] == 30
    # intervals for all 30 steps, though the backtest calibrated 7: past step 7 they keep widening
    widths = conn.execute(
        "SELECT f.step, avg(i.hi - i.lo) FROM forecasts f JOIN forecast_intervals i USING (run_id, model_version_id, "
        "series_id, ts) JOIN model_versions USING (model_version_id) JOIN models m USING (model_id) "
        "WHERE f.run_id = %s AND m.name = 'naive' GROUP BY f.step ORDER BY f.step", (run_id,)).fetchall()
    assert [w[0] for w in widths] == list(range(1, 31))
    assert all(later[1] > earlier[1] for earlier, later in zip(widths[6:], widths[7:], strict=False))


def test_partitions_train_their_own_models_and_a_failing_partition_costs_only_itself(database, tmp_path, conn,
                                                                                    monkeypatch):
    from forecasting.models.recursive import LightGBMGlobal

    raw = _config(tmp_path, {f"s{i}": _good(i) for i in range(5)}, modeling={"partition_size": 2})
    config = parse_config(raw)
    report = execute(database, config, command="run")
    assert report.status == "succeeded"
    assert [p["label"] for p in report.partitions] == ["D partition 1 of 3 (2 series)", "D partition 2 of 3 (2 series)",
                                                       "D partition 3 of 3 (1 series)"]
    per_partition = conn.execute("SELECT partition_key, count(*) FROM models GROUP BY 1 ORDER BY 1").fetchall()
    assert per_partition == [("D:1/3", 3), ("D:2/3", 3), ("D:3/3", 3)]
    # a step holds its partition's share of the config, not every series of the run
    from forecasting.steps.data import load_partition

    data = load_partition(conn, run_id=report.run_id, key="D:2/3", step="train")
    assert [s.name for s in data.config.series] == ["s2", "s3"]
    steps = conn.execute("SELECT step, count(*) FROM run_steps WHERE run_id = %s AND status = 'succeeded' "
                         "GROUP BY step ORDER BY step", (report.run_id,)).fetchall()
    assert steps == [("backtest", 3), ("features", 3), ("predict", 3), ("select", 1), ("train", 3)]

    # one partition's global model crashes for real in training: that partition loses lightgbm, nothing else
    real_fit = LightGBMGlobal.fit

    def fit(self, panel, **kwargs):
        if set(panel["series"]) == {report_ids["s2"], report_ids["s3"]}:
            raise MemoryError("injected: partition out of memory")
        return real_fit(self, panel, **kwargs)

    report_ids = dict(conn.execute("SELECT name, series_id FROM series").fetchall())
    monkeypatch.setattr(LightGBMGlobal, "fit", fit)
    again = execute(database, config, command="run", force=True)
    assert again.status == "partial"
    lost = again.skips[again.skips["model"] == "lightgbm_global"]
    assert sorted(lost["series"].unique()) == ["s2", "s3"]
    assert set(again.skips["model"]) == {"lightgbm_global"}
    counted = conn.execute("SELECT count(DISTINCT series_id) FROM forecasts WHERE run_id = %s",
                           (again.run_id,)).fetchone()[0]
    assert counted == 5  # every series still has forecasts from its other models


def test_progress_bars_count_partitions_times_models_on_a_terminal(database, tmp_path, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    raw = _config(tmp_path, {f"s{i}": _good(i) for i in range(3)}, modeling={"partition_size": 2})
    execute(database, parse_config(raw), command="run", progress=True)
    shown = terminal.getvalue()
    # 2 partitions x 3 models for train and predict; x 2 windows for the backtest's fits
    for line in ("train: 100%", "6/6", "predict: 100%", "backtest: 100%", "12/12", "features: 100%"):
        assert line in shown, line

    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    execute(database, parse_config(raw), command="predict", progress=False)
    assert "predict:" not in quiet.getvalue()


def test_every_registered_model_is_a_forecaster_the_config_accepts(tmp_path):
    from forecasting.model_names import MODEL_NAMES
    from forecasting.models.base import Forecaster
    from forecasting.models.registry import MODELS, build_model, model_class, model_settings

    assert tuple(MODELS) == MODEL_NAMES
    config = parse_config(_config(tmp_path, {"a": _good(0)}, models={"enabled": list(MODELS)}))
    for name in MODELS:
        cls = model_class(name)
        assert issubclass(cls, Forecaster) and cls.name == name and cls.kind in ("global", "local")
        assert isinstance(build_model(name, config, has_exog=False), cls)
        json.dumps(model_settings(name, config, has_exog=False))  # recorded with each model version
    with pytest.raises(KeyError, match="unknown model 'prophet'"):
        model_class("prophet")


def test_a_failing_explanation_never_blocks_the_forecasts(database, tmp_path, conn, monkeypatch):
    import forecasting.steps.predict as predict_step

    def broken(model, *, top_k):
        raise TypeError("float() argument must be a string or a real number, not 'NoneType'")

    monkeypatch.setattr(predict_step, "explain_forecasts", broken)
    report = execute(database, parse_config(_config(tmp_path, {"a": _good(0), "b": _good(1)})), command="run")
    assert report.status == "succeeded"
    assert conn.execute("SELECT count(*) FROM forecast_explanations").fetchone()[0] == 0
    lightgbm = conn.execute(
        "SELECT count(*) FROM forecasts f JOIN model_versions USING (model_version_id) JOIN models m USING (model_id) "
        "WHERE m.name = 'lightgbm_global'").fetchone()[0]
    assert lightgbm == 2 * 7
    noted = [s["explanations"] for s in report.step_summary("predict")]
    assert noted == ["lightgbm_global: TypeError: float() argument must be a string or a real number, not 'NoneType'"]


@pytest.mark.parametrize(("horizon", "message"), [
    (200, "preprocessing.horizon 200 is not below the length of the longest stored target series (120 points)"),
])
def test_a_horizon_the_data_cannot_support_is_refused_before_any_work(database, tmp_path, conn, horizon, message):
    from forecasting.errors import ForecastingError

    config = parse_config(_config(tmp_path, {"a": _good(0)}))
    execute(database, config, command="run")
    runs = conn.execute("SELECT count(*) FROM run_partitions").fetchone()[0]
    longer = parse_config(_config(tmp_path, {"a": _good(0)}, preprocessing={"horizon": horizon, "target_lags": [1]}))
    with pytest.raises(ForecastingError, match=re.escape(message)):
        execute(database, longer, command="predict")
    assert conn.execute("SELECT count(*) FROM run_partitions").fetchone()[0] == runs  # nothing was planned


def test_a_horizon_past_the_year_2262_is_refused(database, tmp_path, conn):
    from forecasting.errors import ForecastingError
    from forecasting.ingest.pipeline import ingest

    ts = pd.date_range("1900-01-07", periods=10_000, freq="W-SUN")  # to 2091
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%d"), "value": np.arange(10_000) % 17}).to_csv(tmp_path / "w.csv",
                                                                                          index=False)
    raw = _config(tmp_path, {}, preprocessing={"horizon": 9_000, "target_lags": [1]})
    raw["series"] = [{"name": "w", "source": "csv", "params": {"path": str(tmp_path / "w.csv")}}]
    ingest(database, parse_config(raw))
    with pytest.raises(ForecastingError, match=r"9000 steps of 'W-SUN' after 2091-.* pass the last date pandas can "):
        execute(database, parse_config(raw), command="predict")


def test_a_retried_step_keeps_the_skips_it_recorded(database, tmp_path, conn):
    from forecasting.steps.dispatch import run_partition_step
    from forecasting.store.steps import run_skips

    config = parse_config(_config(tmp_path, {"good": _good(0), "flat": np.full(DAYS, 42.0)}))
    execute(database, config, command="run")
    report = execute(database, config, command="predict")
    assert report.skipped_series[["series", "step"]].values.tolist() == [["flat", "predict"]]
    run_partition_step(conn, "predict", run_id=report.run_id, key="D:1/1")  # the task retried
    again = run_skips(conn, run_id=report.run_id)
    assert again[["series", "step"]].values.tolist() == [["flat", "predict"]]
    assert again["reason"].iloc[0].startswith("constant series")


def test_an_exactly_periodic_series_still_gets_a_champion(database, tmp_path, conn):
    # its in-sample seasonal differences are all zero: MASE is undefined for it, and the champion rule must
    # still rank the models on it (by a scale that is defined), not leave it without a forecast
    periodic = (100 + 5 * np.sin(2 * np.pi * np.arange(DAYS) / 7)).round(3)
    config = parse_config(_config(tmp_path, {"good": _good(0), "periodic": periodic}))
    report = execute(database, config, command="run")
    assert report.skips.empty, report.skips.to_dict("records")
    champions = dict(conn.execute("SELECT series_name, model FROM champion_forecasts WHERE step = 1").fetchall())
    assert set(champions) == {"good", "periodic"}
    assert champions["periodic"] == "seasonal_naive"  # exact on every window: no other model can beat it
