"""Rolling-origin backtest folds with date-based cutoffs on the panel's frequency grid.

Pure: no database, no I/O. A fold is defined by dates, not row positions, so every series in a panel is cut at
the same moment even when the series start at different times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.features.panel import SERIES, STEP, TS

__all__ = ["MAX_AUTO_WINDOWS", "Fold", "auto_windows", "make_folds", "series_cutoffs", "split_fold"]

# The most windows "auto" gives. Every window costs one more fit of every model, and more did not pay on the
# one data set with the history for them: M4 Weekly with 5 windows took 519 s against 416 s with 3 (2 shared
# cores) and its champion OWA went from 0.708 to 0.734 (benchmarks/accuracy.py --backtest-windows 5)
MAX_AUTO_WINDOWS = 3


@dataclass(frozen=True)
class Fold:
    """One backtest window.

    Attributes:
        window: 0 for the most recent window, 1 for the one before it, and so on.
        cutoff: the last timestamp in training (the forecast origin).
        test_start: the first timestamp scored, one grid step after ``cutoff``.
        test_end: the last timestamp scored, ``horizon`` grid steps after ``cutoff``.
        freq: the pandas frequency alias of the grid the steps are counted on.
        horizon: the number of grid steps from ``test_start`` to ``test_end`` inclusive.
    """

    window: int
    cutoff: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    freq: str
    horizon: int


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _fmt(ts: pd.Timestamp) -> str:
    # Dates read better in messages; keep the time only when there is one (hourly grids).
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else str(ts)


def _check_on_grid(ts: pd.Timestamp, what: str, freq: str) -> None:
    if not pd.tseries.frequencies.to_offset(freq).is_on_offset(ts):
        raise ValueError(f"the {what} ts {_fmt(ts)} is not on the {freq!r} grid; is freq the panel's frequency?")


def auto_windows(lengths: Iterable[int], *, horizon: int, season: int, step: int | None = None,
                 cap: int = MAX_AUTO_WINDOWS) -> int:
    """As many backtest windows (at least 1, at most ``cap``) as leave the median series two seasons, or two
    horizons if longer, of training data at the oldest cutoff.

    The median, not the shortest, series decides, so a few short series do not cost the others windows; a
    series too short for the oldest windows is scored on the later ones only (``split_fold``'s ``min_train``).
    ``step`` is the shift between windows (default ``horizon``), as in ``make_folds``.
    """
    step = horizon if step is None else step
    _check_positive(horizon=horizon, step=step, cap=cap)
    sizes = np.fromiter(lengths, dtype="float64")
    if sizes.size == 0:
        return 1
    room = float(np.median(sizes)) - 2 * max(season, horizon) - horizon  # points left for the extra windows
    return int(np.clip(1 + room // step, 1, cap))


def make_folds(panel: pd.DataFrame, *, freq: str, horizon: int, n_windows: int, step: int | None = None,
               require_history: bool = True) -> list[Fold]:
    """Rolling-origin folds over ``panel`` (columns series, ts, ...), oldest first.

    With ``end`` the latest ts in the panel, window 0 has its cutoff ``horizon`` grid steps before ``end`` (so its
    test period ends at ``end``), and each earlier window moves the cutoff back by ``step`` grid steps (default
    ``horizon``: adjacent test periods). ``step < horizon`` makes test periods overlap; ``step > horizon`` leaves
    unscored gaps between them.

    ``require_history=False`` places the windows even where the oldest ones reach before the panel's first ts
    (a backtest then scores each series only where it has the history, ``split_fold``).

    Raises:
        ValueError: horizon, n_windows or step below 1; an empty panel; a first or latest ts off the ``freq``
            grid; or (unless ``require_history`` is False) a panel too short for the oldest window to keep at least
            one training point.
    """
    step = horizon if step is None else step
    _check_positive(horizon=horizon, n_windows=n_windows, step=step)
    if panel.empty:
        raise ValueError("panel is empty; there is nothing to place folds on")
    start, end = pd.Timestamp(panel[TS].min()), pd.Timestamp(panel[TS].max())
    _check_on_grid(start, "first", freq)
    _check_on_grid(end, "latest", freq)

    # Grid points needed: one training point, then every window's shift, then the last window's horizon.
    needed = 1 + (n_windows - 1) * step + horizon
    grid = pd.date_range(end=end, periods=needed, freq=freq)
    if grid[0] < start and require_history:
        available = len(pd.date_range(start, end, freq=freq))
        raise ValueError(
            f"not enough history for horizon={horizon}, n_windows={n_windows}, step={step}: the oldest window needs "
            f"{needed} timestamps on the {freq!r} grid up to {_fmt(end)} (from {_fmt(grid[0])}), the panel has "
            f"{available} (from {_fmt(start)}); lower n_windows, step or horizon"
        )
    folds = []
    for window in range(n_windows - 1, -1, -1):
        origin = needed - 1 - horizon - window * step
        folds.append(Fold(window, grid[origin], grid[origin + 1], grid[origin + horizon], freq, horizon))
    return folds


def series_cutoffs(panel: pd.DataFrame, fold: Fold) -> pd.Series:
    """Each series' own cutoff in ``fold``: ``fold.cutoff`` moved back by as many grid steps as the series ends
    before the panel's latest ts, so every series is scored on the last ``horizon`` points before its own end
    in window 0 (ragged ends: a ticker that stopped trading, a download that failed for a day) rather than on
    dates past it. Series whose cutoff would fall before the panel's first ts are not in the result."""
    grid, _, cut = _cut_positions(panel, fold)
    return pd.Series(grid[cut.to_numpy()], index=cut.index, name="cutoff")


def _cut_positions(panel: pd.DataFrame, fold: Fold) -> tuple[pd.DatetimeIndex, np.ndarray, pd.Series]:
    """The grid from the panel's (or the cutoff's) first ts to its last, each row's position on it (-1: off the
    grid) and each series' cutoff position."""
    start = min(pd.Timestamp(panel[TS].min()), fold.cutoff)
    grid = pd.date_range(start, pd.Timestamp(panel[TS].max()), freq=fold.freq)
    # ``horizon`` more points, so a test window reaching past the last grid point still has its end
    grid = grid.append(pd.date_range(grid[-1], periods=fold.horizon + 1, freq=fold.freq)[1:])
    if fold.cutoff not in grid:
        raise ValueError(f"the cutoff {_fmt(fold.cutoff)} is not on the {fold.freq!r} grid of the panel")
    position = grid.get_indexer(panel[TS])
    ends = pd.Series(position).groupby(panel[SERIES].to_numpy(), sort=True).max()
    cut = grid.get_loc(fold.cutoff) - (len(grid) - 1 - fold.horizon - ends)
    return grid, position, cut[cut >= 0]


def split_fold(panel: pd.DataFrame, fold: Fold, *, min_train: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut ``panel`` at each series' own cutoff (``series_cutoffs``) into (train, test), both with a fresh
    default index.

    train holds a series' rows up to its cutoff; test the next ``fold.horizon`` grid steps of it, with a ``step``
    column (1..horizon) and its ``cutoff``. A series with fewer than ``min_train`` training rows at its cutoff
    (none at all by default: it starts later) is left out of both, since no model can learn it there; it is
    scored on the windows where it has the history.

    Raises:
        ValueError: a test row whose ts is not on the fold's grid (the panel is not regular at ``fold.freq``).
    """
    _check_positive(min_train=min_train)
    grid, position, cuts = _cut_positions(panel, fold)
    cut_position = panel[SERIES].map(cuts).fillna(-1).to_numpy(dtype="int64")
    cutoff = pd.Series(grid[np.maximum(cut_position, 0)], index=panel.index).where(cut_position >= 0)
    is_train = panel[TS] <= cutoff  # NaT (no cutoff in the panel) compares False
    counts = panel.loc[is_train, SERIES].value_counts()
    trained = counts.index[counts >= min_train]
    is_train &= panel[SERIES].isin(trained)
    train = panel.loc[is_train].reset_index(drop=True)
    test_end = grid[np.maximum(cut_position, 0) + fold.horizon]
    in_test = panel[SERIES].isin(trained) & (panel[TS] > cutoff) & (panel[TS].to_numpy() <= test_end.to_numpy())
    steps = position - cut_position
    off = in_test & (position < 0)
    if off.any():
        shown = [_fmt(ts) for ts in panel.loc[off, TS].drop_duplicates().head(5)]
        raise ValueError(f"test rows at ts not on the {fold.freq!r} grid from cutoff {_fmt(fold.cutoff)}: {shown}")
    keep = in_test.to_numpy()
    test = panel.loc[keep].assign(**{STEP: steps[keep].astype("int64"), "cutoff": cutoff[keep]})
    return train, test.reset_index(drop=True)
