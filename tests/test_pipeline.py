"""The modeling pipeline end to end on the real embedded PostgreSQL: run, lineage, reuse, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.features.panel import SERIES, STEP, TS, YHAT
from forecasting.run import execute
from forecasting.store.registry import model_version_load

WEEKS = 150


def _weekly_csv(tmp_path, name: str, *, seed: int, level: float, revised: bool = False) -> str:
    rng = np.random.default_rng(seed)
    t = np.arange(WEEKS)
    values = level + 0.05 * level * np.sin(2 * np.pi * t / 13) + rng.normal(0, 0.01 * level, WEEKS).cumsum()
    if revised:
        values[: WEEKS // 2] *= 1.2  # renormalisation of the early history
    ts = pd.date_range("2020-01-05", periods=WEEKS, freq="W-SUN")
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%d"), "value": values.round(4)}).to_csv(path, index=False)
    return str(path)


def _config(tmp_path, *, models=("naive", "seasonal_naive", "linear", "lightgbm_global", "arima"), **overrides):
    series = [
        {
            "name": f"s{i}",
            "source": "csv",
            "params": {"path": _weekly_csv(tmp_path, f"s{i}", seed=i, level=100 * (i + 1))},
        }
        for i in range(3)
    ]
    raw = {
        "name": "pipe",
        "series": series,
        "preprocessing": {
            "horizon": 4,
            "target_lags": [1, 2, 3, 4, 13],
            "rolling_windows": [4],
            "target_transforms": ["diff", "scale"],
        },
        "models": {
            "enabled": list(models),
            "lightgbm": {"n_estimators": 40, "num_leaves": 7, "min_child_samples": 5},
            "arima": {"order": [1, 1, 0]},
        },
        "backtest": {"n_windows": 3, "modes": ["latest"]},
        "prediction": {"levels": [80, 95], "explain_top_k": 3},
        "ingest": {"retries": 0},
    }
    raw.update(overrides)
    return parse_config(raw)


@pytest.fixture
def demo_run(database, tmp_path):
    config = _config(tmp_path)
    report = execute(database, config, command="run")
    return config, report


def test_run_writes_forecasts_metrics_explanations_readable_with_sql(demo_run, conn):
    config, report = demo_run
    assert report.ingest is not None and not report.ingest.failed
    assert report.skips.empty and report.errors == {}
    status = conn.execute("SELECT command, status FROM pipeline_runs WHERE run_id = %s", (report.run_id,)).fetchone()
    assert status == ("run", "succeeded")

    # one champion forecast per series and step, with both interval levels around the point
    rows = conn.execute(
        "SELECT series_name, model, step, yhat, lo_80, hi_80, lo_95, hi_95, last_value, delta "
        "FROM champion_forecasts ORDER BY series_name, step"
    ).fetchall()
    assert len(rows) == 3 * 4
    for _name, model, _step, yhat, lo80, hi80, lo95, hi95, last_value, delta in rows:
        assert model in config.models.enabled
        assert lo95 <= lo80 <= yhat <= hi80 <= hi95
        assert delta == pytest.approx(yhat - last_value)

    # every enabled model was backtested on the same windows and scored
    models = conn.execute(
        "SELECT model, count(DISTINCT window_no), count(DISTINCT series_id) FROM backtest_forecasts "
        "WHERE run_id = %s GROUP BY model ORDER BY model",
        (report.run_id,),
    ).fetchall()
    assert [m[0] for m in models] == sorted(config.models.enabled)
    assert {(m[1], m[2]) for m in models} == {(3, 3)}
    metrics = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT metric FROM backtest_metrics WHERE run_id = %s", (report.run_id,)
        ).fetchall()
    }
    assert {"mae", "rmse", "mape", "smape", "mase", "bias", "coverage_80", "width_95"} <= metrics

    # SHAP explanations for the LightGBM forecasts, and global importance for its model version
    explained = conn.execute(
        "SELECT count(*), count(DISTINCT (series_id, ts)), max(rank) FROM forecast_explanations e "
        "JOIN model_versions v USING (model_version_id) JOIN models m USING (model_id) "
        "WHERE e.run_id = %s AND m.name = 'lightgbm_global'",
        (report.run_id,),
    ).fetchone()
    assert explained == (3 * 4 * 3, 3 * 4, 3)
    assert conn.execute("SELECT count(*) FROM feature_importance").fetchone()[0] > 0

    # lineage: each model version lists the exact series versions it was trained on
    lineage = conn.execute(
        "SELECT count(DISTINCT d.series_version_id) FROM model_version_data d "
        "JOIN model_versions v USING (model_version_id) WHERE v.run_id = %s",
        (report.run_id,),
    ).fetchone()[0]
    assert lineage == 3
    assert conn.execute("SELECT count(*) FROM pipeline_run_data WHERE run_id = %s", (report.run_id,)).fetchone()[0] == 3
    metrics = conn.execute(
        "SELECT v.metrics FROM model_versions v JOIN models m USING (model_id) WHERE m.name = 'naive'"
    ).fetchone()[0]
    assert set(metrics["latest"]) >= {"mase", "smape", "coverage_80"}


def _versions(conn, run_id: int) -> dict[str, int]:
    return dict(conn.execute("SELECT model, model_version_id FROM partition_models WHERE run_id = %s",
                             (run_id,)).fetchall())


def _reused(conn, run_id: int) -> list[str]:
    rows = conn.execute("SELECT model FROM partition_models WHERE run_id = %s AND reused ORDER BY model",
                        (run_id,)).fetchall()
    return [r[0] for r in rows]


def test_statistical_models_and_the_ensemble_run_through_the_pipeline(database, tmp_path, conn):
    config = _config(tmp_path, models=("naive", "naive2", "theta", "ets", "ensemble"),
                     preprocessing={"horizon": 4})  # everything else "auto"
    report = execute(database, config, command="run")
    assert report.skips.empty and report.errors == {}
    query = ("SELECT m.name, f.series_id, f.step, f.yhat FROM forecasts f JOIN model_versions v "
             "USING (model_version_id) JOIN models m USING (model_id) WHERE f.run_id = %s")
    wide = pd.DataFrame(conn.execute(query, (report.run_id,)).fetchall(),
                        columns=["model", "series_id", "step", "yhat"])
    assert wide.groupby("model").size().to_dict() == {name: 12 for name in ("ensemble", "ets", "naive", "naive2",
                                                                            "theta")}
    # the ensemble is the median of its members (theta and ets: every enabled model but the baselines)
    wide = wide.pivot_table(index=["series_id", "step"], columns="model", values="yhat")
    np.testing.assert_allclose(wide["ensemble"], (wide["theta"] + wide["ets"]) / 2, rtol=1e-9)


def test_the_ensemble_combines_the_members_its_backtest_chose_without_fitting_them_again(database, tmp_path, conn,
                                                                                        monkeypatch):
    from forecasting.models.local import LocalForecaster
    from forecasting.models.recursive import LinearGlobal

    fits: dict[str, int] = {}
    for cls in (LocalForecaster, LinearGlobal):
        def counting(self, *args, _fit=cls.fit, **kwargs):
            fits[self.name] = fits.get(self.name, 0) + 1
            return _fit(self, *args, **kwargs)
        monkeypatch.setattr(cls, "fit", counting)
    config = _config(tmp_path, models=("naive", "theta", "ets", "linear", "ensemble"), preprocessing={"horizon": 4})
    report = execute(database, config, command="run")
    assert report.skips.empty and report.errors == {}
    assert fits == {"theta": 4, "ets": 4, "linear": 4}  # 3 backtest windows and the training, once each
    chosen = conn.execute("SELECT summary->'ensemble' FROM run_steps WHERE run_id = %s AND step = 'backtest'",
                          (report.run_id,)).fetchone()[0]
    members, how = chosen["members"], chosen["how"]
    assert 2 <= len(members) <= 3 and set(members) <= {"theta", "ets", "linear"} and how in ("median", "mean")
    # its backtest rows and its forecasts are the chosen combination of its members'
    backtest = pd.DataFrame(conn.execute(
        "SELECT model, window_no, series_id, step, yhat FROM backtest_forecasts WHERE run_id = %s",
        (report.run_id,)).fetchall(), columns=["model", "window", "series_id", "step", "yhat"])
    forecasts = pd.DataFrame(conn.execute(
        "SELECT m.name, f.series_id, f.step, f.yhat FROM forecasts f JOIN model_versions v USING (model_version_id) "
        "JOIN models m USING (model_id) WHERE f.run_id = %s", (report.run_id,)).fetchall(),
        columns=["model", "series_id", "step", "yhat"])
    for frame, keys in ((backtest, ["window", "series_id", "step"]), (forecasts, ["series_id", "step"])):
        wide = frame.pivot_table(index=keys, columns="model", values="yhat")
        np.testing.assert_allclose(wide["ensemble"], getattr(wide[members], how)(axis=1), rtol=1e-9)
    params = conn.execute("SELECT v.params FROM model_versions v JOIN models m USING (model_id) "
                          "WHERE m.name = 'ensemble'").fetchone()[0]
    assert params["model"]["how"] == how and sorted(params["model"]["members"]) == sorted(members)
    # the same data again: the same choice, so the ensemble's registered version is reused with its members'
    again = execute(database, config, command="run")
    assert "ensemble" in _reused(conn, again.run_id) and _versions(conn, again.run_id) == _versions(
        conn, report.run_id)


def test_loading_a_stored_model_version_reproduces_its_forecasts_bit_for_bit(demo_run, conn):
    _, report = demo_run
    for name, version_id in _versions(conn, report.run_id).items():
        stored = pd.DataFrame(
            conn.execute(
                "SELECT s.name, f.ts, f.step, f.yhat FROM forecasts f JOIN series s USING (series_id) "
                "WHERE f.run_id = %s AND f.model_version_id = %s ORDER BY s.name, f.step",
                (report.run_id, version_id),
            ).fetchall(),
            columns=[SERIES, TS, STEP, YHAT],
        )
        model = model_version_load(conn, version_id)
        again = model.predict(4).sort_values([SERIES, STEP]).reset_index(drop=True)
        assert again[YHAT].to_numpy().tobytes() == stored[YHAT].to_numpy().tobytes(), name


def test_rerun_with_unchanged_data_reuses_models_and_forecasts(database, tmp_path, conn):
    config = _config(tmp_path, models=("naive", "lightgbm_global"))
    first = execute(database, config, command="run")
    second = execute(database, config, command="run")
    assert _reused(conn, second.run_id) == ["lightgbm_global", "naive"]
    assert _versions(conn, second.run_id) == _versions(conn, first.run_id)
    counts = conn.execute("SELECT run_id, count(*) FROM forecasts GROUP BY run_id ORDER BY run_id").fetchall()
    assert [c[1] for c in counts] == [2 * 3 * 4, 2 * 3 * 4]  # forecasts archived per run
    forced = execute(database, config, command="run", force=True)
    assert _reused(conn, forced.run_id) == []
    assert set(_versions(conn, forced.run_id).values()).isdisjoint(_versions(conn, first.run_id).values())


def test_a_model_failing_does_not_stop_the_others(database, tmp_path, conn, monkeypatch):
    from forecasting.models.baselines import SeasonalNaiveForecaster

    def broken(self, *args, **kwargs):
        raise RuntimeError("injected model failure")

    monkeypatch.setattr(SeasonalNaiveForecaster, "fit", broken)
    config = _config(tmp_path, models=("naive", "seasonal_naive"))
    report = execute(database, config, command="run")
    assert set(report.skips["model"]) == {"seasonal_naive"}  # every series lost that model, and only that one
    assert sorted(report.skips["series"].unique()) == ["s0", "s1", "s2"]
    reasons = report.skips.groupby("step")["reason"].first()
    assert "injected model failure" in reasons["backtest"] and "injected model failure" in reasons["train"]
    assert "no trained model version of seasonal_naive for partition W-SUN:1/1" in reasons["predict"]
    assert report.status == "partial"
    champions = conn.execute("SELECT DISTINCT model FROM champion_forecasts").fetchall()
    assert champions == [("naive",)]


def test_as_known_backtest_uses_the_data_first_known_at_each_origin(database, tmp_path, conn):
    config = _config(tmp_path, models=("naive",), backtest={"n_windows": 2, "modes": ["latest", "as_known"]})
    execute(database, config, command="run")
    # the source renormalises its early history: a revision of every series
    for i in range(3):
        _weekly_csv(tmp_path, f"s{i}", seed=i, level=100 * (i + 1), revised=True)
    report = execute(database, config, command="run")
    assert {r.outcome for r in report.ingest.records} == {"revised"}
    inflation = report.inflation
    assert set(inflation.columns) >= {"model", "latest", "as_known"}
    # naive forecasts only look at the last value, which is unchanged: both modes score the same
    assert inflation["latest"].iloc[0] == pytest.approx(inflation["as_known"].iloc[0])
    # but the training data of each as-known window is the pre-revision vintage
    first_known = conn.execute(
        "SELECT value FROM series_observations_first_known((SELECT series_id FROM series WHERE name = 's0'), "
        "'2020-01-05') "
    ).fetchone()[0]
    current = conn.execute(
        "SELECT value FROM current_observations WHERE series_name = 's0' ORDER BY ts LIMIT 1"
    ).fetchone()[0]
    assert current == pytest.approx(first_known * 1.2, rel=1e-3)


def test_cli_run_prints_the_champion_report(database, tmp_path, capsys, monkeypatch):
    import json

    from forecasting.cli import main as cli_main

    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    config = _config(tmp_path, models=("naive", "seasonal_naive"))
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")
    assert cli_main(["-q", "run", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pipeline run 1 succeeded (1 partition(s))" in out
    assert "ingest run 1 succeeded: 3 new\n" in out
    table = out[out.index("champion per series") :].splitlines()
    assert table[1].split() == ["series", "freq", "champion", "chosen", "by", "sMAPE", "MASE", "next"]
    assert sorted(line.split()[0] for line in table[3:6]) == ["s0", "s1", "s2"]
    assert all(line.split()[2] in ("naive", "seasonal_naive") for line in table[3:6])
    assert all(line.split()[3] in ("per_series", "robust", "pooled") for line in table[3:6])
    assert "SELECT * FROM champion_forecasts" in out
    assert cli_main(["-q", "predict", "--config", str(path)]) == 0
    capsys.readouterr()
    assert cli_main(["-q", "run", "--config", str(path)]) == 0
    assert "ingest run 2 succeeded: 3 unchanged\n" in capsys.readouterr().out  # a re-run stores nothing


def test_a_series_never_stored_is_left_out_and_the_others_are_forecast(database, tmp_path, conn):
    config = _config(tmp_path, models=("naive",))
    raw = config.model_dump(mode="json")
    raw["series"].append({"name": "ghost", "source": "csv", "params": {"path": str(tmp_path / "missing.csv")}})
    report = execute(database, parse_config(raw), command="run")
    assert [r.series_name for r in report.ingest.failed] == ["ghost"]
    series = {r[0] for r in conn.execute("SELECT DISTINCT series_name FROM champion_forecasts").fetchall()}
    assert series == {"s0", "s1", "s2"}


@pytest.mark.parametrize("strategy", ["pooled", "per_series", "auto"])
def test_the_champion_strategy_is_applied_and_recorded(database, tmp_path, conn, strategy):
    config = _config(tmp_path, models=("naive", "linear", "lightgbm_global"),
                     backtest={"n_windows": 3, "modes": ["latest"], "champion_strategy": strategy})
    from forecasting.ingest.pipeline import ingest

    ingest(database, config)
    report = execute(database, config, command="backtest")
    summary = conn.execute("SELECT summary FROM run_steps WHERE run_id = %s AND step = 'select'",
                           (report.run_id,)).fetchone()[0]
    used = set(summary["strategy"].values())
    assert used <= {"pooled", "per_series", "robust"} and len(used) == 1
    if strategy != "auto":
        assert used == {strategy}
    champions = conn.execute("SELECT model, score FROM champions WHERE run_id = %s", (report.run_id,)).fetchall()
    assert len(champions) == 3 and all(score >= 0 for _, score in champions)
    # each champion says how it was chosen, in the table and in the view analysts read
    recorded = conn.execute("SELECT DISTINCT strategy FROM v_champions WHERE run_id = %s", (report.run_id,)).fetchall()
    assert recorded == [(next(iter(used)),)]
    if used == {"pooled"}:  # one model for every series: the one with the best pooled backtest score
        assert len({model for model, _ in champions}) == 1
    if strategy == "per_series":  # each series' own lowest mean MASE, as the stored per-series metrics say
        best = conn.execute(
            "SELECT DISTINCT ON (series_id) series_id, model FROM backtest_metrics WHERE run_id = %s AND "
            "metric = 'mase' AND step IS NOT NULL AND series_id IS NOT NULL GROUP BY series_id, model "
            "ORDER BY series_id, avg(value)", (report.run_id,)).fetchall()
        stored = conn.execute("SELECT series_id, model FROM champions WHERE run_id = %s ORDER BY series_id",
                              (report.run_id,)).fetchall()
        assert stored == best


