"""A run of the pipeline forecasts what the accuracy benchmark measures: the same champions, the same numbers.

The benchmark re-uses the pipeline's pieces (backtest, ensemble choice, champion choice, models) outside the
database; a piece that one of them does differently (the champion choice once scored backtests with M4's lag-1
MASE in the benchmark and with the frequency's period in a run) makes its figures describe a product nobody runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from benchmark_modules import load_benchmark, write_m4_files

from forecasting.backtesting.m4 import M4_HORIZON, read_m4, write_m4
from forecasting.config import parse_config
from forecasting.run import execute

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _real_sample(directory: Path, frequency: str, source: str, every: int, last: int | None = None) -> None:
    """Every ``every``-th series of a shared benchmark file, its training part cut to the ``last`` points, in the
    M4 layout."""
    train, test = read_m4(SHARED / source, frequency)
    keep = sorted(train["series"].unique())[::every]
    rows = {}
    for name, panel, cut in (("train", train, last), ("test", test, None)):
        # ids become series names, which a config spells without spaces ("N 646" -> "N646")
        rows[name] = [[key.replace(" ", ""), *part["y"].to_numpy()[-(cut or len(part)):]]
                      for key, part in panel[panel["series"].isin(keep)].groupby("series")]
    write_m4(directory, frequency, rows["train"], rows["test"])


# 40 of M4's weekly series, 200 weeks each: enough for the lag-52 scale, and a sample on which choosing by lag-1
# MASE (M4's) picks LightGBM where a run picks the ensemble; 84 of M3's quarterly series, where choosing the
# ensemble's combination differed
SAMPLES = {"Weekly": ("m4", 9, 200), "Quarterly": ("m3-quarterly", 9, None)}


@pytest.mark.parametrize("frequency", ["Weekly", "Quarterly", "Yearly", "Monthly", "Daily", "Hourly"])
def test_a_run_without_settings_forecasts_what_the_accuracy_benchmark_measures(database, conn, tmp_path, capsys,
                                                                                frequency):
    if frequency in SAMPLES:
        source, every, last = SAMPLES[frequency]
        _real_sample(tmp_path, frequency, source, every, last)
    else:  # no shared file at this frequency: its calendar, period and "auto" features on synthetic series
        write_m4_files(tmp_path, frequency, n_series=5)
    out = tmp_path / "champion.csv"
    code = load_benchmark("accuracy").main(["--data", str(tmp_path), "--frequency", frequency, "--speed-series", "0",
                                            "--n-jobs", "1", "--forecasts-out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    measured = pd.read_csv(out, index_col=0)

    train, test = read_m4(tmp_path, frequency)
    series = []
    for key, part in train.groupby("series"):
        path = tmp_path / f"{key}.csv"
        stamps = part["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")  # hourly series need the time of day
        part.assign(ts=stamps).rename(columns={"y": "value"})[["ts", "value"]].to_csv(path, index=False)
        series.append({"name": key, "source": "csv", "params": {"path": str(path)}})
    # only what the benchmark sets too: the horizon and the processes
    config = parse_config({"name": "parity", "series": series, "preprocessing": {"horizon": M4_HORIZON[frequency]},
                           "modeling": {"n_jobs": 1}})
    execute(database, config, command="run")

    rows = conn.execute("SELECT series_name, model, ts, step, yhat, lo_80, hi_80, lo_95, hi_95 FROM champion_forecasts "
                        "ORDER BY series_name, step")
    forecast = pd.DataFrame(rows.fetchall(), columns=["series", "model", "ts", "step", "yhat", "lo_80", "hi_80",
                                                      "lo_95", "hi_95"])
    counts = forecast.drop_duplicates("series")["model"].value_counts().to_dict()
    assert f"champion counts: {counts}" in printed  # the same champions
    ran = forecast.pivot(index="series", columns="step", values="yhat").sort_index()
    np.testing.assert_allclose(ran.to_numpy(), measured.sort_index().to_numpy(), rtol=1e-6)
    # the same intervals: the coverage the benchmark printed for the champion is the run's bands' on the test part
    joined = test.merge(forecast, on=["series", "ts"])
    assert len(joined) == len(test)
    coverage = [100 * ((joined["y"] >= joined[f"lo_{q}"]) & (joined["y"] <= joined[f"hi_{q}"])).mean()
                for q in (80, 95)]
    row = re.search(r"^champion +[0-9.]+ +[0-9.]+ +[0-9.]+ +([0-9.]+) +([0-9.]+)", printed, re.MULTILINE)
    assert [float(row.group(1)), float(row.group(2))] == pytest.approx(coverage, abs=0.051)
