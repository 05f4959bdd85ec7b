"""One default model set: what a config without ``models.enabled`` runs is what both benchmarks measure without
``--models`` and what the README names (``DEFAULT_MODELS`` in the registry is the one declaration)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from benchmark_modules import load_benchmark

from forecasting.backtesting.m4 import M4_HORIZON, write_m4
from forecasting.config import parse_config
from forecasting.models.registry import DEFAULT_MODELS, MODELS

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "t", "series": [{"name": "a", "source": "sample", "params": {"dataset": "nile"}}]}


def test_the_default_set_is_registered_once_each():
    assert DEFAULT_MODELS and len(set(DEFAULT_MODELS)) == len(DEFAULT_MODELS)
    assert set(DEFAULT_MODELS) <= set(MODELS)


def test_a_config_without_models_runs_the_default_set():
    assert parse_config(MINIMAL).models.enabled == list(DEFAULT_MODELS)
    # another models setting does not change the set
    assert parse_config(MINIMAL | {"models": {"seed": 3}}).models.enabled == list(DEFAULT_MODELS)


def test_the_scale_benchmark_without_models_runs_the_default_set():
    scale = load_benchmark("scale")
    assert parse_config(scale.config_of(3, None, None)).models.enabled == list(DEFAULT_MODELS)


def _write_quarterly(directory: Path, n_series: int = 5, length: int = 40) -> None:
    rng = np.random.default_rng(0)
    h = M4_HORIZON["Quarterly"]
    train, test = [], []
    for i in range(n_series):
        t = np.arange(length + h)
        y = (200 + 0.5 * t + np.cumsum(rng.normal(0, 1, length + h))) * (1 + 0.1 * np.sin(np.pi * t / 2))
        train.append([f"X{i}", *y[:length]])
        test.append([f"X{i}", *y[length:]])
    write_m4(directory, "Quarterly", train, test)


def test_the_accuracy_benchmark_without_models_measures_the_default_set(tmp_path, capsys):
    _write_quarterly(tmp_path)
    code = load_benchmark("accuracy").main(["--data", str(tmp_path), "--frequency", "Quarterly", "--speed-series", "0",
                                        "--n-jobs", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    line = next(x for x in printed.splitlines() if x.startswith("models: "))
    assert line == f"models: {' '.join(DEFAULT_MODELS)} (the pipeline's default set)"
    table = {x.split()[0] for x in printed.split("\nmodel ")[1].splitlines()[1:] if x.strip()}
    assert set(DEFAULT_MODELS) <= table  # every default model was fitted and scored on the test part


def test_the_readme_names_the_default_set():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("**The default model set**", 1)[1].split("\n\n", 1)[0]
    named = re.findall(r"`([a-z_0-9]+)`", paragraph.split("):", 1)[1].split(".", 1)[0])  # the first sentence
    assert named == list(DEFAULT_MODELS)
