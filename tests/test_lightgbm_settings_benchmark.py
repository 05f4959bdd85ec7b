"""benchmarks/lightgbm_settings.py on tiny files in the M4 layout: what it prints is what it measured."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from benchmark_modules import load_benchmark, write_m4_files

from forecasting.backtesting.m4 import M4_HORIZON, read_m4

settings = load_benchmark("lightgbm_settings")


def _rows(printed: str) -> dict[str, list[float]]:
    table = {}
    for line in printed.splitlines():
        match = re.match(r"(.+?)\s+((?:-?[0-9.]+|nan)(?:\s+(?:-?[0-9.]+|nan)){4})$", line)
        if match:
            table[match.group(1).strip()] = [float(v) for v in match.group(2).split()]
    return table


def test_seeds_variants_and_their_average_are_scored_on_holdout_and_test(tmp_path, capsys):
    write_m4_files(tmp_path, "Quarterly", n_series=8)
    code = settings.main(["--data", str(tmp_path), "--frequency", "Quarterly", "--transforms", "diff", "scale",
                          "--seeds", "0", "1", "--set", "num_leaves=4,min_child_samples=3", "--set", "history=20"])
    printed = capsys.readouterr().out
    assert code == 0
    rows = _rows(printed)
    assert list(rows) == ["default, seed 0", "default, seed 1", "num_leaves=4,min_child_samples=3", "history=20",
                          "average of seeds 0 1"]
    for label, (holdout_owa, test_smape, test_mase, test_owa, _) in rows.items():
        assert 0 < holdout_owa < 5 and 0 < test_smape < 200 and test_mase > 0 and 0 < test_owa < 5, label
    assert rows["num_leaves=4,min_child_samples=3"][3] != rows["default, seed 0"][3]  # the setting reached LightGBM
    assert "rank agreement of holdout and test OWA (Spearman):" in printed
    low, high = sorted([rows["default, seed 0"][3], rows["default, seed 1"][3]])
    assert f"test OWA over seeds 0 1: {low:.3f} to {high:.3f}" in printed


def test_a_variant_sets_lightgbm_and_history_keeps_the_last_points(tmp_path):
    write_m4_files(tmp_path, "Quarterly", n_series=4)
    train, _ = read_m4(tmp_path, "Quarterly")
    variant = settings.parse_variant("history=12,objective=l2,learning_rate=0.1,extra_trees=true", seed=3)
    assert variant.history == 12 and variant.seed == 3
    assert variant.params == {"objective": "l2", "learning_rate": 0.1, "extra_trees": True}
    config = settings.variant_config(variant, M4_HORIZON["Quarterly"], ["diff", "scale"])
    assert config.models.seed == 3 and config.models.enabled == ["lightgbm_global"]
    kept = settings.forecast(variant, train, "Quarterly", ["diff", "scale"])
    assert len(kept) == 4 * M4_HORIZON["Quarterly"] and kept["yhat"].notna().all()
    # the fit saw only the last 12 points: the same as fitting on those points directly
    last = train.groupby("series").tail(12).reset_index(drop=True)
    direct = settings.forecast(settings.Variant("x", variant.params, None, 3), last, "Quarterly", ["diff", "scale"])
    pd.testing.assert_frame_equal(kept, direct)


@pytest.mark.parametrize("text", ["num_leaves", "=3", "history=1", "history=ten"])
def test_a_malformed_variant_is_refused_with_its_text(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        settings.parse_variant(text, seed=0)
