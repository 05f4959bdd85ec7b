"""benchmarks/accuracy.py end to end on tiny files in the M4 layout, for every M4 frequency (fast models only)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from benchmark_modules import load_benchmark, write_m4_files

from forecasting.backtesting.m4 import M4_HORIZON, M4_SEASON

accuracy = load_benchmark("accuracy")
rescore_m4 = load_benchmark("rescore_m4")

@pytest.mark.parametrize("frequency", list(M4_HORIZON))
def test_benchmark_runs_every_frequency_and_writes_scorable_forecasts(tmp_path, capsys, frequency):
    write_m4_files(tmp_path, frequency)
    out = tmp_path / "champion.csv"
    code = accuracy.main(["--data", str(tmp_path), "--frequency", frequency, "--models", "naive", "naive2",
                          "theta", "linear", "ensemble", "--speed-series", "0", "--n-jobs", "1",
                          "--forecasts-out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    last = printed.strip().splitlines()[-1]
    assert last.startswith("champion sMAPE=") and " MASE=" in last and " OWA=" in last
    for column in ("sMAPE", "MASE", "OWA", "cov80", "cov95"):
        assert column in printed
    assert "wall time:" in printed and "backtest" in printed
    shares = re.search(r"backtest seconds per model \(share of the backtest's model time\): (.*)", printed).group(1)
    percents = dict(re.findall(r"(\w+) \d+ \((\d+)%\)", shares))
    assert sorted(percents) == ["linear", "naive", "naive2", "theta"]  # every fitted model, the ensemble is not
    assert 97 <= sum(map(int, percents.values())) <= 103  # shares of one total (rounded)
    wide = pd.read_csv(out)
    assert list(wide.columns) == ["V1", *[f"V{j + 2}" for j in range(M4_HORIZON[frequency])]]
    assert sorted(wide["V1"]) == [f"X{i}" for i in range(6)] and np.isfinite(wide.iloc[:, 1:].to_numpy()).all()


@pytest.mark.parametrize("frequency", ["Quarterly", "Weekly"])
def test_the_independent_rescorer_agrees_with_the_benchmark(tmp_path, capsys, frequency):
    # seasonal (Quarterly: Naive2 adjusts) and non-seasonal (Weekly: M4's period 1) scoring paths
    write_m4_files(tmp_path, frequency)
    out = tmp_path / "champion.csv"
    assert accuracy.main(["--data", str(tmp_path), "--frequency", frequency, "--models", "naive", "theta",
                          "--speed-series", "0", "--n-jobs", "1", "--forecasts-out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    printed = {k: float(v) for k, v in re.findall(r"(sMAPE|MASE|OWA)=([0-9.]+)", last)}
    again = rescore_m4.rescore(tmp_path, frequency, out, M4_SEASON[frequency])
    assert again["smape"] == pytest.approx(printed["sMAPE"], abs=6e-4)
    assert again["mase"] == pytest.approx(printed["MASE"], abs=6e-4)
    assert again["owa"] == pytest.approx(printed["OWA"], abs=6e-4)


def test_the_seed_reaches_the_models_and_is_printed(tmp_path, capsys):
    assert accuracy.benchmark_config("Weekly", None, None).models.seed == 0  # the pipeline's default
    write_m4_files(tmp_path, "Quarterly")
    lines = {}
    for seed in ("0", "7"):
        assert accuracy.main(["--data", str(tmp_path), "--frequency", "Quarterly", "--models", "lightgbm_global",
                              "--speed-series", "0", "--n-jobs", "1", "--seed", seed]) == 0
        printed = capsys.readouterr().out
        assert f"models: lightgbm_global, models.seed {seed}" in printed
        lines[seed] = printed.strip().splitlines()[-1]
    assert lines["0"] != lines["7"]  # LightGBM's bagging draws other rows with another seed
