"""Re-score a forecasts file written by ``benchmarks/accuracy.py --forecasts-out`` without any project code.

    python benchmarks/rescore_m4.py --data ../shared/data/m4 --frequency Weekly --forecasts weekly.csv --period 1
    python benchmarks/rescore_m4.py --data ../shared/data/m3-quarterly --frequency Quarterly --forecasts m3q.csv \
        --period 4

It shares no line with ``forecasting/`` on purpose: the M4 formulas (sMAPE, MASE with the in-sample seasonal naive
scale of ``--period``, OWA against Naive2 with M4's 90% autocorrelation test and classical multiplicative
decomposition) are written again here from the competition's guide, with the standard library and numpy, so a bug
in the project's scoring cannot confirm itself. The last line is ``sMAPE=… MASE=… OWA=…`` and Naive2's own figures,
which must reproduce the published ones (M4 Weekly 9.161 / 2.777, M3 Quarterly 10.029 / 1.252).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def _read_wide(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        return {row[0]: np.array([float(v) for v in row[1:] if v not in ("", "NA")]) for row in rows}


def _acf(x: np.ndarray, lag: int) -> float:
    d = x - x.mean()
    return float(np.sum(d[lag:] * d[:-lag]) / np.sum(d * d))


def _is_seasonal(x: np.ndarray, m: int) -> bool:
    if m <= 1 or len(x) < 3 * m:
        return False
    r = np.array([_acf(x, k) for k in range(1, m + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return abs(r[m - 1]) > limit


def _seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(x, weights, mode="valid")
    offset = (len(weights) - 1) // 2
    ratio = np.full(len(x), np.nan)
    ratio[offset:offset + len(trend)] = x[offset:offset + len(trend)] / trend
    indices = np.array([np.nanmean(ratio[phase::m]) for phase in range(m)])
    return indices * m / indices.sum()


def _naive2(x: np.ndarray, horizon: int, m: int) -> np.ndarray:
    if not _is_seasonal(x, m):
        return np.repeat(x[-1], horizon)
    indices = _seasonal_indices(x, m)
    n = len(x)
    adjusted_last = x[-1] / indices[(n - 1) % m]
    return adjusted_last * indices[np.arange(n, n + horizon) % m]


def _smape_mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, m: int) -> tuple[float, float]:
    smape = float(np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))
    scale = float(np.mean(np.abs(history[m:] - history[:-m])))
    return smape, float(np.mean(np.abs(actual - forecast))) / scale


def rescore(data: Path, frequency: str, forecasts: Path, period: int) -> dict[str, float]:
    """Mean sMAPE and MASE of ``forecasts`` and of Naive2 over the test file's series, and the OWA."""
    train = _read_wide(data / f"{frequency}-train.csv")
    test = _read_wide(data / f"{frequency}-test.csv")
    made = _read_wide(forecasts)
    ours, naive2 = [], []
    for name, actual in test.items():
        horizon = len(actual)
        ours.append(_smape_mase(actual, made[name][:horizon], train[name], period))
        naive2.append(_smape_mase(actual, _naive2(train[name], horizon, period), train[name], period))
    smape, mase = np.mean(ours, axis=0)
    smape2, mase2 = np.mean(naive2, axis=0)
    return {"smape": smape, "mase": mase, "owa": 0.5 * (smape / smape2 + mase / mase2),
            "naive2_smape": smape2, "naive2_mase": mase2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with <Frequency>-train.csv and -test.csv")
    parser.add_argument("--frequency", required=True)
    parser.add_argument("--forecasts", type=Path, required=True, help="the --forecasts-out file")
    parser.add_argument("--period", type=int, required=True, help="M4's period (Weekly 1, Quarterly 4, Monthly 12)")
    args = parser.parse_args()
    s = rescore(args.data, args.frequency, args.forecasts, args.period)
    print(f"sMAPE={s['smape']:.3f} MASE={s['mase']:.3f} OWA={s['owa']:.3f} "
          f"(Naive2 sMAPE={s['naive2_smape']:.3f} MASE={s['naive2_mase']:.3f})")


if __name__ == "__main__":
    main()
