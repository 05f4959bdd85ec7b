"""Feature building and LightGBM training: this project vs Nixtla's mlforecast, same data, same run.

mlforecast 1.1 pins pandas < 3, so it gets an environment of its own (the project runs on both):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e . mlforecast
    .venv-bench/bin/python benchmarks/speed.py                          # 10,000 series x 500 points
    .venv-bench/bin/python benchmarks/speed.py --series 2000 --points 300

Both sides get the same seeded panel, the same lags, rolling means of lag 1 over the same windows and the
same LightGBM settings (single-threaded on both). Prints seconds and peak traced memory (tracemalloc, a
separate pass so it does not slow the timed one) of each step and the ratios.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd

from forecasting.features import build as features
from forecasting.features.build import FeatureSpec, build_features
from forecasting.features.panel import SERIES, TS, Y
from forecasting.models.recursive import LightGBMGlobal

LGBM = {"n_estimators": 50, "learning_rate": 0.1, "num_leaves": 31, "verbosity": -1, "n_jobs": 1,
        "random_state": 0, "deterministic": True, "force_row_wise": True}


def make_panel(n_series: int, points: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(points), n_series)
    level = np.repeat(rng.uniform(10, 1000, n_series), points)
    y = level * (1 + 0.1 * np.sin(2 * np.pi * t / 7)) + rng.normal(0, 1, n_series * points).cumsum() % 50
    ts = np.tile(pd.date_range("2020-01-01", periods=points, freq="D").to_numpy(), n_series)
    names = np.repeat(np.array([f"id_{i:05d}" for i in range(n_series)]), points)
    return pd.DataFrame({SERIES: names, TS: ts.astype("datetime64[ns]"), Y: y})


def _previous_window_stats(y, w, stats, layout):
    """The feature builder's rolling statistics before the doubling-sum mean: mean from the two-tiling prefix
    sums (``_window_moments``), kept here to show before and after in one run."""
    out = {"min": features._rolling_extreme(y, w, np.minimum)}
    mean, _ = features._window_moments(y, layout, w)
    mean[np.isnan(out["min"])] = np.nan
    return {"mean": mean} if stats == ("mean",) else {**out, "mean": mean}


def build_features_before(panel: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    current = features._window_stats
    features._window_stats = _previous_window_stats
    try:
        return build_features(panel, spec, freq="D")
    finally:
        features._window_stats = current


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def peak_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--lags", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 14, 21, 28])
    parser.add_argument("--windows", type=int, nargs="+", default=[7, 14, 28])
    args = parser.parse_args(argv)
    try:
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
    except ImportError:
        print("mlforecast is not installed: see the module docstring (it needs its own environment)")
        return 2
    import lightgbm

    panel = make_panel(args.series, args.points)
    spec = FeatureSpec(lags=tuple(args.lags), rolling_windows=tuple(args.windows), rolling_stats=("mean",),
                       calendar=False)
    mlf_frame = panel.rename(columns={SERIES: "unique_id", TS: "ds"})

    def mlf() -> MLForecast:
        return MLForecast(models={"lgbm": lightgbm.LGBMRegressor(**LGBM)}, freq="D", lags=args.lags,
                          lag_transforms={1: [RollingMean(window_size=w) for w in args.windows]}, num_threads=1)

    steps = {
        "features: forecasting (before)": lambda: build_features_before(panel, spec),
        "features: forecasting": lambda: build_features(panel, spec, freq="D"),
        "features: mlforecast": lambda: mlf().preprocess(mlf_frame, dropna=False),
        "features+LightGBM fit: forecasting": lambda: LightGBMGlobal(spec, params=LGBM).fit(panel, freq="D"),
        "features+LightGBM fit: mlforecast": lambda: mlf().fit(mlf_frame, dropna=False),
    }
    # warm-up: numba compilation in mlforecast/coreforecast, first-call costs in ours
    small = make_panel(20, 60)
    build_features(small, spec, freq="D")
    mlf().preprocess(small.rename(columns={SERIES: "unique_id", TS: "ds"}), dropna=False)

    print(f"{args.series:,} series x {args.points:,} points = {len(panel):,} rows; lags {args.lags}; "
          f"rolling means of lag 1 over {args.windows}")
    results = {}
    for name, fn in steps.items():
        seconds, out = timed(fn)
        if name.startswith("features:") and "before" not in name:
            print(f"  {name}: {out.shape[1]} columns")
        del out
        results[name] = (seconds, peak_mb(fn))
    print(f"\n{'step':<40}{'seconds':>9}{'peak MB':>10}")
    for name, (seconds, peak) in results.items():
        print(f"{name:<40}{seconds:>9.2f}{peak:>10.0f}")
    for what in ("features", "features+LightGBM fit"):
        ours, theirs = results[f"{what}: forecasting"], results[f"{what}: mlforecast"]
        print(f"{what}: mlforecast / forecasting = {theirs[0] / ours[0]:.2f}x time, {theirs[1] / ours[1]:.2f}x memory")
    before, after = results["features: forecasting (before)"], results["features: forecasting"]
    print(f"features before / after the doubling-sum rolling mean = {before[0] / after[0]:.2f}x time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
