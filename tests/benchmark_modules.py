"""For tests of the scripts in ``benchmarks/``: load one as a module (the folder is not a package: its scripts run
by path), and write tiny data files in the M4 layout they read."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from forecasting.backtesting.m4 import M4_HORIZON, M4_SEASON, write_m4

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# training points of the longest series per frequency: enough for the frequency's "auto" features
LENGTH = {"Yearly": 30, "Quarterly": 40, "Monthly": 80, "Weekly": 120, "Daily": 120, "Hourly": 400}


def load_benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # registered first, as an import would: dataclasses look their module up while the script runs
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_m4_files(directory: Path, frequency: str, n_series: int = 6) -> None:
    """``<frequency>-train.csv`` and ``-test.csv`` (V1 = id X0.., V2.. = values) of ``n_series`` trending,
    seasonal random walks of ragged lengths, the test part holding the frequency's M4 horizon."""
    rng = np.random.default_rng(0)
    h, m = M4_HORIZON[frequency], max(M4_SEASON[frequency], 1)
    train, test = [], []
    for i in range(n_series):
        n = LENGTH[frequency] - 3 * i  # ragged rows, as in the real files
        t = np.arange(n + h)
        y = (200 + 0.5 * t + np.cumsum(rng.normal(0, 1, n + h))) * (1 + 0.1 * np.sin(2 * np.pi * t / m))
        train.append([f"X{i}", *y[:n]])
        test.append([f"X{i}", *y[n:]])
    write_m4(directory, frequency, train, test)
