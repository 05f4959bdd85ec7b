"""M4 accuracy through this project's own pipeline code (not a test).

    python benchmarks/accuracy.py --data ../shared/data/m4 --frequency Weekly
    python benchmarks/accuracy.py --data ../shared/data/m4 --frequency Weekly --models naive lightgbm_global

Reads the M4 train/test files of one frequency (horizon and seasonal period from the frequency), backtests
every model on rolling origins inside the training data, picks a champion per series exactly as production
does (``forecasting.evaluation``), fits every model on the full training data, forecasts the official
horizon and scores it with M4's sMAPE, MASE and OWA (relative to M4's Naive2: naive on the seasonally
adjusted series where M4's test finds seasonality). Runs in memory: no database.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from forecasting.backtest import run_backtest
from forecasting.config import MODEL_NAMES, parse_config
from forecasting.evaluation import backtest_metrics, choose_champions
from forecasting.m4 import M4_FREQ, M4_HORIZON, m4_scores, naive2_forecasts, owa_table, read_m4
from forecasting.models.registry import model_factories
from forecasting.panel import SERIES

# Published Weekly results (organisers' "Evaluation and Ranks.xlsx"; ../shared/data/README.md)
PUBLISHED_WEEKLY = {
    "Naive2": (9.161, 2.777, 1.000),
    "Theta": (9.093, 2.637, 0.971),
    "Comb (SES, Holt, Damped)": (8.944, 2.432, 0.926),
    "M4 winner (Smyl)": (7.817, 2.356, 0.851),
    "best Weekly entry": (6.582, 2.107, 0.739),
}


def benchmark_config(frequency: str, models: list[str], lags: int, windows: list[int]):
    """The pipeline configuration used for M4 (validated like any user config)."""
    raw = {
        "name": f"m4-{frequency.lower()}",
        "series": [{"name": "placeholder", "source": "sample", "params": {"dataset": "nile"}}],
        "preprocessing": {"horizon": M4_HORIZON[frequency], "target_lags": list(range(1, lags + 1)),
                          "rolling_windows": windows, "calendar": False, "target_transforms": ["diff", "scale"]},
        "models": {"enabled": models,
                   "lightgbm": {"n_estimators": 500, "learning_rate": 0.03, "num_leaves": 63,
                                "min_child_samples": 20, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                                "bagging_freq": 1, "objective": "l1"},
                   "arima": {"order": "auto", "max_points": 300}},
    }
    return parse_config(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/m4")
    parser.add_argument("--frequency", default="Weekly", choices=sorted(M4_HORIZON))
    parser.add_argument("--models", nargs="+", default=["naive", "linear", "lightgbm_global", "arima"],
                        choices=MODEL_NAMES)
    parser.add_argument("--lags", type=int, default=52)
    parser.add_argument("--windows", type=int, nargs="*", default=[4, 13, 52], help="rolling-mean windows")
    parser.add_argument("--backtest-windows", type=int, default=2)
    args = parser.parse_args(argv)

    frequency, horizon, freq = args.frequency, M4_HORIZON[args.frequency], M4_FREQ[args.frequency]
    train, test = read_m4(args.data, frequency)
    print(f"M4 {frequency}: {train[SERIES].nunique()} series, {len(train):,} training points, horizon {horizon}")
    config = benchmark_config(frequency, args.models, args.lags, args.windows)
    factories = model_factories(config, has_exog=False)

    started = time.perf_counter()
    backtest = run_backtest(train, factories, freq=freq, horizon=horizon, n_windows=args.backtest_windows)
    metrics = backtest_metrics(backtest.forecasts, train, freq=freq)
    champions = choose_champions(metrics, metric=config.backtest.champion_metric, model_order=config.models.enabled)
    print(f"backtest ({args.backtest_windows} windows) {time.perf_counter() - started:.0f}s; "
          f"champion counts: {champions['model'].value_counts().to_dict()}")

    pieces, seconds = [], {}
    for name, factory in factories.items():
        t0 = time.perf_counter()
        model = factory().fit(train, freq=freq)
        pieces.append(model.predict(horizon).assign(model=name))
        seconds[name] = time.perf_counter() - t0
        if model.fallbacks:
            print(f"  {name}: {len(model.fallbacks)} series fell back to naive")
    forecasts = pd.concat(pieces, ignore_index=True)
    chosen = forecasts.merge(champions[[SERIES, "model"]], on=[SERIES, "model"]).assign(model="champion")
    reference = naive2_forecasts(train, frequency).assign(model="naive2")  # M4's OWA divides by Naive2
    scores = m4_scores(pd.concat([forecasts, chosen, reference], ignore_index=True), train, test, frequency)
    table = owa_table(scores)
    print(f"\n{'model':<28}{'sMAPE':>8}{'MASE':>8}{'OWA':>8}{'fit+predict s':>15}")
    for name, row in table.sort_values("owa").iterrows():
        print(f"{name:<28}{row.smape:>8.3f}{row.mase:>8.3f}{row.owa:>8.3f}{seconds.get(name, np.nan):>15.1f}")
    if frequency == "Weekly":
        print("\npublished (M4 Weekly):")
        for name, (s, m, o) in PUBLISHED_WEEKLY.items():
            print(f"{name:<28}{s:>8.3f}{m:>8.3f}{o:>8.3f}")
    champion = table.loc["champion"]
    print(f"\nchampion sMAPE={champion.smape:.3f} MASE={champion.mase:.3f} OWA={champion.owa:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
