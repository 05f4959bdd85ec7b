"""Accuracy on M4/M3-style files through this project's own pipeline code (not a test), default settings.

    python benchmarks/accuracy.py --data ../shared/data/m4 --frequency Weekly
    python benchmarks/accuracy.py --data ../shared/data/m3-quarterly --frequency Quarterly --forecasts-out q.csv

Reads ``<Frequency>-train.csv`` and ``<Frequency>-test.csv`` (the M4 layout, which the M3 files share: V1 = id,
V2... = values), horizon and seasonal period from the frequency. Then, all in memory (no database):

1. times the statistical models on 300-point series (ms per series, with ``modeling.n_jobs`` processes);
2. backtests the pipeline's default model set (``forecasting.models.registry.DEFAULT_MODELS``, what a config
   without ``models.enabled`` runs; ``--models`` to measure others) on rolling origins inside the training data;
3. picks a champion per series with the pipeline's champion strategy: the simplest whose score on held-out
   backtest windows is within one standard error of the best (``select_strategy``);
4. fits every model on the whole training data and forecasts the test horizon, with conformal intervals
   calibrated on the backtest errors;
5. scores every model and the champion with M4's sMAPE, MASE and OWA (against M4's Naive2), plus the 80% and
   95% interval coverage on the test part.

Nothing is chosen by hand per data set: features, transforms and windows come from the frequency and the data.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.backtesting.backtest import run_backtest
from forecasting.backtesting.evaluation import (
    ENSEMBLE_MAX_MEMBERS,
    choice_scores,
    choose_by_strategy,
    choose_ensemble,
    ensemble_rows,
    select_strategy,
)
from forecasting.backtesting.intervals import apply_intervals, conformal_quantiles, series_scale
from forecasting.backtesting.m4 import M4_FREQ, M4_HORIZON, m4_scores, naive2_forecasts, owa_table, read_m4
from forecasting.config import MODEL_NAMES, parse_config
from forecasting.features.panel import SERIES, STEP, TS, YHAT, Y
from forecasting.frequency import Frequency, season_length
from forecasting.models.ensemble import combinations, combine, ensemble_members
from forecasting.models.registry import build_model
from forecasting.steps.screen import backtest_spec

LEVELS = (80, 95)
SPEED_MODELS = ("ets", "theta", "arima")

# Published M4 Weekly results (the organisers' "Evaluation and Ranks.xlsx", as this benchmark quoted them before)
PUBLISHED = {
    "Weekly": {"Naive2": (9.161, 2.777, 1.000), "Theta": (9.093, 2.637, 0.971),
               "Comb (SES, Holt, Damped)": (8.944, 2.432, 0.926), "M4 winner (Smyl)": (7.817, 2.356, 0.851),
               "best Weekly entry": (6.582, 2.107, 0.739)},
}


def benchmark_config(frequency: str, models: list[str] | None, n_jobs: int | None, seed: int | None = None):
    """The pipeline configuration: only the horizon (and the models, seed and processes, when given) are set,
    everything else is the pipeline's default, the model set included."""
    raw = {"name": f"m4-{frequency.lower()}",
           "series": [{"name": "placeholder", "source": "sample", "params": {"dataset": "nile"}}],
           "preprocessing": {"horizon": M4_HORIZON[frequency]}}
    if models:
        raw["models"] = {"enabled": models}
    if seed is not None:
        raw.setdefault("models", {})["seed"] = seed
    if n_jobs is not None:
        raw["modeling"] = {"n_jobs": n_jobs}
    return parse_config(raw)


def synthetic_series(n: int, length: int, freq: str, seed: int = 0) -> pd.DataFrame:
    """``n`` series of ``length`` points: level, trend, a season of the frequency's period and noise."""
    rng = np.random.default_rng(seed)
    m = max(season_length(freq), 1)
    t = np.arange(length)
    ts = pd.date_range("2000-01-01", periods=length, freq=freq)
    frames = [pd.DataFrame({SERIES: f"s{i:04d}", TS: ts,
                            Y: (100 + 0.1 * t + np.cumsum(rng.normal(0, 1, length)))
                            * (1 + 0.2 * np.sin(2 * np.pi * (t + i) / m))}) for i in range(n)]
    return pd.concat(frames, ignore_index=True)


def time_per_series(config, freq: str, names: list[str], n: int = 20, length: int = 300) -> dict[str, float]:
    """Milliseconds per series of fit + predict of each statistical model ``names`` on ``n`` series of ``length``
    points."""
    panel = synthetic_series(n, length, freq)
    out = {}
    for name in names:
        # start the worker processes and load what the model needs in them (numba's compiled ETS) first
        build_model(name, config, has_exog=False).fit(synthetic_series(16, length, freq, seed=1), freq=freq)
        started = time.perf_counter()
        build_model(name, config, has_exog=False).fit(panel, freq=freq).predict(8)
        out[name] = 1000 * (time.perf_counter() - started) / n
    return out


def write_wide(forecasts: pd.DataFrame, path: Path) -> None:
    """V1 = series id, V2... = the forecasts in step order (the M4 files' layout)."""
    wide = forecasts.pivot(index=SERIES, columns=STEP, values=YHAT).sort_index()
    wide.columns = [f"V{c + 1}" for c in wide.columns]
    wide.index.name = "V1"
    wide.to_csv(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/m4")
    parser.add_argument("--frequency", default="Weekly", choices=sorted(M4_HORIZON))
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES,
                        help="default: the pipeline's default set (models.enabled of a config without it)")
    parser.add_argument("--seed", type=int, default=None, help="models.seed (default: the pipeline's, 0)")
    parser.add_argument("--backtest-windows", type=int, default=None, help="default: as the history allows")
    parser.add_argument("--n-jobs", type=int, default=None, help="processes for per-series models; default all")
    parser.add_argument("--forecasts-out", type=Path, help="write the champion's test forecasts here (wide CSV)")
    parser.add_argument("--speed-series", type=int, default=20,
                        help="300-point series to time the statistical models on (0: skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    phases: dict[str, float] = {}
    begun = time.perf_counter()

    frequency, horizon, freq = args.frequency, M4_HORIZON[args.frequency], M4_FREQ[args.frequency]
    started = time.perf_counter()
    train, test = read_m4(args.data, frequency)
    phases["read"] = time.perf_counter() - started
    config = benchmark_config(frequency, args.models, args.n_jobs, args.seed)
    models = list(config.models.enabled)
    season = season_length(freq)
    # the pipeline's backtest.n_windows: auto, from the same rule
    spec = backtest_spec(config, Frequency.parse(freq), train.groupby(SERIES).size())
    if args.backtest_windows:
        spec = dataclasses.replace(spec, n_windows=args.backtest_windows)
    windows = spec.n_windows
    print(f"{frequency}: {train[SERIES].nunique()} series, {len(train):,} training points, horizon {horizon}, "
          f"period {season}, {windows} backtest windows")
    print(f"models: {' '.join(models)}" + ("" if args.models else " (the pipeline's default set)")
          + (f", models.seed {config.models.seed}" if args.seed is not None else ""))

    timed = [name for name in SPEED_MODELS if name in models]
    if args.speed_series > 0 and timed:
        started = time.perf_counter()
        speed = time_per_series(config, freq, timed, n=args.speed_series)
        phases["speed check"] = time.perf_counter() - started
        print("time per 300-point series (fit + predict, modeling.n_jobs processes): "
              + ", ".join(f"{name} {ms:.0f} ms" for name, ms in speed.items()))

    fitted = [name for name in models if name != "ensemble"]
    factories = {name: (lambda name=name: build_model(name, config, has_exog=False)) for name in fitted}

    started = time.perf_counter()
    backtest = run_backtest(train, factories, spec, freq=freq)
    forecasts = backtest.forecasts
    members, how = [], "median"
    if "ensemble" in models:  # the pipeline's backtest step: its rule, from the members' backtest forecasts
        choice = choose_ensemble(forecasts, train, freq=freq, candidates=ensemble_members(config),
                                 hows=combinations(config))
        if choice is not None:
            members, how, ensemble_score = list(choice.members), choice.how, choice.score
            forecasts = pd.concat([forecasts, ensemble_rows(forecasts, members, how)], ignore_index=True)
    phases["backtest"] = time.perf_counter() - started
    for failure in backtest.failures:
        print(f"  backtest failure: {failure}")
    total = sum(backtest.fit_seconds.values()) or 1.0
    print("backtest seconds per model (share of the backtest's model time): " + ", ".join(
        f"{k} {v:.0f} ({100 * v / total:.0f}%)" for k, v in backtest.fit_seconds.items()))
    if members:
        print(f"ensemble: {how} of {', '.join(members)} (the top {len(members)} by backtest MASE; its backtest "
              f"MASE {ensemble_score:.3f} is the lowest over k = 2..{ENSEMBLE_MAX_MEMBERS} and median/mean)")

    started = time.perf_counter()
    # the pipeline's select step scores the backtest so (MASE with the frequency's period, each window's own
    # scale), not with the M4 period the test part is judged by: the benchmark measures what a run chooses
    scores = choice_scores(forecasts, train, freq=freq)
    strategy, strategy_scores = select_strategy(scores, metric="mase", model_order=models)
    champions = choose_by_strategy(scores, strategy, metric="mase", model_order=models)
    quantiles = conformal_quantiles(forecasts, series_scale(train), LEVELS)
    phases["champion choice"] = time.perf_counter() - started
    print(f"champion strategy {strategy}, the simplest within one standard error of the best (held-out backtest "
          "MASE: " + ", ".join(f"{k} {v:.3f}" for k, v in strategy_scores.items()) + ")")
    print(f"champion counts: {champions['model'].value_counts().to_dict()}")

    started = time.perf_counter()
    pieces, seconds = [], {}
    for name, factory in factories.items():
        t0 = time.perf_counter()
        model = factory().fit(train, freq=freq)
        pieces.append(model.predict(horizon).assign(model=name))
        seconds[name] = time.perf_counter() - t0
        if model.fallbacks:
            print(f"  {name}: {len(model.fallbacks)} series fell back to naive")
        if getattr(model, "transform_names_", None) is not None:
            print(f"  {name}: target transforms {list(model.transform_names_)}, lags up to {max(model.spec.lags)}, "
                  f"windows {list(model.spec.rolling_windows)}, calendar {model.spec.calendar}")
    final = pd.concat(pieces, ignore_index=True)
    if members:
        combined = combine(final, members, how=how).assign(model="ensemble")
        final = pd.concat([final, combined], ignore_index=True)
    final = apply_intervals(final, quantiles, series_scale(train), LEVELS)
    chosen = final.merge(champions[[SERIES, "model"]], on=[SERIES, "model"]).assign(model="champion")
    phases["fit + forecast"] = time.perf_counter() - started

    # M4's Naive2 (M4's period: 1 for Weekly and Daily) is the OWA reference, whatever the naive2 model does
    reference = naive2_forecasts(train, frequency).assign(model="Naive2 (M4)")
    everything = pd.concat([final, chosen], ignore_index=True)
    scored = pd.concat([everything, reference], ignore_index=True)
    table = owa_table(m4_scores(scored, train, test, frequency), reference="Naive2 (M4)")
    joined = test.merge(everything, on=[SERIES, TS])
    for level in LEVELS:
        inside = (joined[Y] >= joined[f"lo_{level}"]) & (joined[Y] <= joined[f"hi_{level}"])
        table[f"cov{level}"] = inside.groupby(joined["model"]).mean() * 100

    print(f"\n{'model':<20}{'sMAPE':>8}{'MASE':>8}{'OWA':>8}{'cov80':>7}{'cov95':>7}{'fit+predict s':>15}")
    for name, row in table.iterrows():
        print(f"{name:<20}{row.smape:>8.3f}{row.mase:>8.3f}{row.owa:>8.3f}{row.cov80:>7.1f}{row.cov95:>7.1f}"
              f"{seconds.get(name, np.nan):>15.1f}")
    for name, (s, m, o) in PUBLISHED.get(frequency, {}).items():
        print(f"{name:<20}{s:>8.3f}{m:>8.3f}{o:>8.3f}   (published)")
    if args.forecasts_out:
        write_wide(chosen, args.forecasts_out)
        print(f"champion forecasts written to {args.forecasts_out}")
    phases["total"] = time.perf_counter() - begun
    print("wall time: " + ", ".join(f"{k} {v:.0f}s" for k, v in phases.items()))
    champion = table.loc["champion"]
    print(f"\nchampion sMAPE={champion.smape:.3f} MASE={champion.mase:.3f} OWA={champion.owa:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
