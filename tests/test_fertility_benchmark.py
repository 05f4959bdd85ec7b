"""benchmarks/fertility.py: statsmodels' yearly fertility panel in the M4 layout, and the accuracy benchmark on it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from benchmark_modules import load_benchmark

from forecasting.backtesting.m4 import M4_HORIZON, read_m4

fertility = load_benchmark("fertility")
H = M4_HORIZON["Yearly"]


def test_rows_keep_countries_with_a_full_recent_history_and_say_why_the_others_left():
    years = list(range(1980, 2010))
    full = np.linspace(6.0, 2.0, len(years))
    late_start = np.r_[[np.nan] * 5, full[5:]]  # starts in 1985: still 25 years
    panel = pd.DataFrame([full, late_start, np.r_[full[:-1], np.nan], np.r_[full[:10], np.nan, full[11:]],
                          np.r_[[np.nan] * 15, full[15:]]],
                         index=["AAA", "BBB", "NOLAST", "GAP", "SHORT"], columns=years)
    train, test, left_out = fertility.m4_rows(panel, H)
    assert [r[0] for r in train] == [r[0] for r in test] == ["AAA", "BBB"]
    assert train[0][1:] == pytest.approx(full[:-H]) and test[0][1:] == pytest.approx(full[-H:])
    assert train[1][1:] == pytest.approx(full[5:-H])  # leading empty years dropped, not filled
    reasons = " | ".join(left_out)
    assert "NOLAST: no value in 2009" in reasons and "GAP: a gap" in reasons and "SHORT: 15 years" in reasons


def test_the_real_panel_is_written_in_the_m4_layout(tmp_path):
    n = fertility.write_m4_layout(tmp_path)
    train, test = read_m4(tmp_path, "Yearly")
    assert n == train["series"].nunique() == test["series"].nunique() > 150
    assert (test.groupby("series").size() == H).all()
    assert (train.groupby("series").size() >= fertility.MIN_YEARS - H).all()
    # births per woman: the data set's own range, nothing shifted or rescaled on the way
    assert train["y"].min() > 0.5 and train["y"].max() < 10


def test_the_benchmark_runs_on_it_and_beats_naive2(tmp_path, capsys):
    code = fertility.main(["--out", str(tmp_path), "--models", "naive", "ets", "--speed-series", "0",
                           "--n-jobs", "1"])
    printed = capsys.readouterr().out
    assert code == 0 and "Yearly:" in printed
    owa = float(re.search(r"champion sMAPE=\S+ MASE=\S+ OWA=([0-9.]+)", printed).group(1))
    # fertility rates trend for decades: a trended model must beat the naive forecast clearly
    assert owa < 0.8


def test_its_own_options_cannot_be_overridden(tmp_path):
    with pytest.raises(SystemExit):
        fertility.main(["--out", str(tmp_path), "--frequency", "Weekly"])
