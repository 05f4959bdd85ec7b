"""Read the M4 competition files (wide CSV, one row per series) into train and test panels.

The organisers publish ``<Frequency>-train.csv`` and ``<Frequency>-test.csv`` (Mcompetitions/M4-methods,
``Dataset/Train`` and ``Dataset/Test``): column ``V1`` is the series id, ``V2``, ``V3``, … the values in time
order, shorter rows padded with empty fields. There are no dates, so every series is laid on a regular grid whose
training part ends at one anchor per frequency (``M4_TRAIN_END``); the test part continues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, TS, Y

__all__ = ["M4_FREQ", "M4_HORIZON", "M4_SEASON", "M4_TRAIN_END", "m4_scores", "naive2_forecasts", "owa_table",
           "read_m4", "write_m4"]

M4_HORIZON = {"Yearly": 6, "Quarterly": 8, "Monthly": 18, "Weekly": 13, "Daily": 14, "Hourly": 48}
M4_SEASON = {"Yearly": 1, "Quarterly": 4, "Monthly": 12, "Weekly": 1, "Daily": 1, "Hourly": 24}
M4_FREQ = {"Yearly": "YS-JAN", "Quarterly": "QS-JAN", "Monthly": "MS", "Weekly": "W-SUN", "Daily": "D", "Hourly": "h"}
# Any on-grid date works; 2000-01-02 is the Sunday that W-SUN needs, the others fall on 2000-01-01.
M4_TRAIN_END = {name: pd.Timestamp("2000-01-02" if name == "Weekly" else "2000-01-01") for name in M4_HORIZON}


def _read_wide(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"M4 file not found: {path} (the organisers' Dataset/Train and Dataset/Test files, e.g. Weekly-train.csv)"
        )
    wide = pd.read_csv(path, index_col=0, dtype={"V1": str})
    return wide.astype(float)


def _lengths(wide: pd.DataFrame, path_name: str) -> np.ndarray:
    """Number of values per row, after checking each row is a gap-free prefix followed by padding."""
    present = ~np.isnan(wide.to_numpy())
    lengths = present.sum(axis=1)
    prefix = np.arange(present.shape[1]) < lengths[:, None]
    gappy = wide.index[(present != prefix).any(axis=1)]
    if len(gappy):
        raise ValueError(f"{path_name}: rows with empty fields between values: {gappy[:5].tolist()}")
    return lengths


def _grid(frequency: str, before: int, after: int) -> pd.DatetimeIndex:
    """``before`` grid points ending at the anchor, then ``after`` more; nanoseconds unless the span cannot fit."""
    freq, end = M4_FREQ[frequency], M4_TRAIN_END[frequency]
    try:
        past = pd.date_range(end=end, periods=before, freq=freq, unit="ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        # The longest Yearly series span 841 years, more than datetime64[ns] holds (1677-2262).
        past = pd.date_range(end=end, periods=before, freq=freq, unit="s")
    future = pd.date_range(end, periods=after + 1, freq=freq, unit=past.unit)[1:]
    return past.append(future)


def _to_panel(wide: pd.DataFrame, positions: np.ndarray, grid: pd.DatetimeIndex) -> pd.DataFrame:
    rows, cols = np.nonzero(~np.isnan(wide.to_numpy()))
    panel = pd.DataFrame(
        {
            SERIES: wide.index.to_numpy(dtype=object)[rows].astype(str),
            TS: grid[positions[rows] + cols],
            Y: wide.to_numpy()[rows, cols],
        }
    )
    return panel.sort_values([SERIES, TS], kind="stable", ignore_index=True)


def read_m4(directory: str | Path, frequency: str = "Weekly") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``<frequency>-train.csv`` and ``<frequency>-test.csv`` from ``directory`` into (train, test) panels.

    Both are panels (columns series, ts, y; sorted by series then ts) with series = the ``V1`` id. Every series'
    training values end at ``M4_TRAIN_END[frequency]`` on the ``M4_FREQ[frequency]`` grid and its
    ``M4_HORIZON[frequency]`` test values follow on the next grid points, so the series are aligned at the
    forecast origin, not at their start. ts is datetime64[ns], except for a Yearly file whose longest series does
    not fit that range, which gets datetime64[s].

    Raises:
        ValueError: unknown frequency, ids that differ between the files, a gap inside a row, or a test row that
            does not hold exactly the horizon's values.
        FileNotFoundError: either file is missing.
    """
    if frequency not in M4_HORIZON:
        raise ValueError(f"unknown M4 frequency {frequency!r}; expected one of {list(M4_HORIZON)}")
    directory = Path(directory)
    train_wide = _read_wide(directory / f"{frequency}-train.csv")
    test_wide = _read_wide(directory / f"{frequency}-test.csv")
    if set(train_wide.index) != set(test_wide.index):
        odd = sorted(set(train_wide.index) ^ set(test_wide.index))
        raise ValueError(f"{frequency}: train and test files hold different series, e.g. {odd[:5]}")

    horizon = M4_HORIZON[frequency]
    train_len = _lengths(train_wide, f"{frequency}-train.csv")
    test_len = _lengths(test_wide, f"{frequency}-test.csv")
    short = test_wide.index[test_len != horizon]
    if len(short):
        raise ValueError(f"{frequency}-test.csv: rows without exactly {horizon} values: {short[:5].tolist()}")

    longest = int(train_len.max()) if len(train_len) else 0
    grid = _grid(frequency, longest, horizon)
    # Grid index of each row's first value: training rows end at position longest - 1, test rows start after it.
    train = _to_panel(train_wide, longest - train_len, grid)
    test = _to_panel(test_wide, np.full(len(test_wide), longest), grid)
    return train, test


def _write_wide(path: Path, rows: Sequence[Sequence]) -> None:
    width = max(len(r) for r in rows)
    padded = [list(r) + [None] * (width - len(r)) for r in rows]
    pd.DataFrame(padded, columns=[f"V{j + 1}" for j in range(width)]).to_csv(path, index=False)


def write_m4(directory: str | Path, frequency: str, train: Sequence[Sequence], test: Sequence[Sequence]) -> None:
    """Write ``<frequency>-train.csv`` and ``<frequency>-test.csv`` in the organisers' layout, which ``read_m4`` reads.

    ``train`` and ``test`` are rows ``[id, value, value, ...]`` in time order; shorter rows are padded with empty
    fields. Checked before anything is written, so a bad call leaves no half-written pair: both hold rows for the
    same ids, every row has a value, and every test row holds exactly the frequency's M4 horizon.
    """
    if frequency not in M4_HORIZON:
        raise ValueError(f"unknown M4 frequency {frequency!r}; expected one of {list(M4_HORIZON)}")
    if not train:
        raise ValueError(f"{frequency}: no rows to write")
    train_ids, test_ids = [str(r[0]) for r in train], [str(r[0]) for r in test]
    if sorted(train_ids) != sorted(test_ids) or len(set(train_ids)) != len(train_ids):
        odd = sorted(set(train_ids) ^ set(test_ids)) or sorted({i for i in train_ids if train_ids.count(i) > 1})
        raise ValueError(f"{frequency}: train and test rows must hold each series once, e.g. {odd[:5]}")
    empty = [i for i, r in zip(train_ids, train, strict=True) if len(r) < 2]
    if empty:
        raise ValueError(f"{frequency}-train: rows without values: {empty[:5]}")
    horizon = M4_HORIZON[frequency]
    short = [i for i, r in zip(test_ids, test, strict=True) if len(r) - 1 != horizon]
    if short:
        raise ValueError(f"{frequency}-test: rows without exactly {horizon} values: {short[:5]}")
    directory = Path(directory)
    _write_wide(directory / f"{frequency}-train.csv", train)
    _write_wide(directory / f"{frequency}-test.csv", test)


def naive2_forecasts(train: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """M4's Naive2 benchmark for ``train`` (columns series, ts, step, yhat), with M4's period for ``frequency``.

    The period is M4's (1 for Weekly and Daily), not the frequency's calendar one: OWA is defined against
    exactly this benchmark.
    """
    from forecasting.models.statistical import Naive2Forecaster

    model = Naive2Forecaster(season=M4_SEASON[frequency], n_jobs=1)
    return model.fit(train, freq=M4_FREQ[frequency]).predict(M4_HORIZON[frequency])


def m4_scores(forecasts: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """M4's sMAPE and MASE per (model, series) of ``forecasts`` (columns model, series, ts, yhat)."""
    from forecasting.backtesting.metrics import mase, smape

    season = M4_SEASON[frequency]
    joined = test.merge(forecasts, on=[SERIES, TS], how="left")
    insample = {name: g[Y].to_numpy() for name, g in train.groupby(SERIES)}
    rows = [{"model": model, SERIES: name, "smape": smape(g[Y], g["yhat"]),
             "mase": mase(g[Y], g["yhat"], insample=insample[name], season=season)}
            for (model, name), g in joined.groupby(["model", SERIES])]
    return pd.DataFrame(rows)


def owa_table(scores: pd.DataFrame, *, reference: str = "naive2") -> pd.DataFrame:
    """Mean sMAPE and MASE per model and OWA against model ``reference`` (M4: Naive2), best OWA first."""
    from forecasting.backtesting.metrics import owa

    table = scores.groupby("model")[["smape", "mase"]].mean()
    ref = table.loc[reference]
    table["owa"] = [owa(r.smape, r.mase, smape_naive2=ref.smape, mase_naive2=ref.mase) for r in table.itertuples()]
    return table.sort_values("owa")
