"""The accuracy benchmark on a panel and a frequency the defaults were never measured on (not a test).

    python benchmarks/fertility.py                       # writes the files to a temporary folder and runs
    python benchmarks/fertility.py --out fertility --forecasts-out yearly.csv   # keeps them; any accuracy.py option

The two shared data sets are weekly and quarterly. This one is yearly: statsmodels' ``fertility`` data set (the
World Bank's total fertility rate, births per woman, one row per country, 1960-2013; read from the statsmodels
install, not copied here). Every country with a value in the last year that has values, no gap after its first
value and at least ``MIN_YEARS`` years becomes one series; its last ``M4_HORIZON["Yearly"]`` (6) years are the
test part. The files are written in the M4 layout and ``benchmarks/accuracy.py --frequency Yearly`` runs on them
with the pipeline's default model set, so its table, champion and re-scoring (``benchmarks/rescore_m4.py
--frequency Yearly --period 1``) are read as for M4 and M3.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402  (a sibling script, not a package)

from forecasting.backtesting.m4 import M4_HORIZON, write_m4  # noqa: E402

FREQUENCY = "Yearly"
# a series needs the test part plus enough years for rolling-origin backtests of the same horizon
MIN_YEARS = 20


def fertility_panel() -> pd.DataFrame:
    """Country x year rates (rows: country codes, columns: years as ints), up to the last year with values."""
    import statsmodels.api as sm

    data = sm.datasets.fertility.load_pandas().data.set_index("Country Code")
    years = data[[c for c in data.columns if str(c).isdigit()]].astype("float64")
    years.columns = years.columns.astype(int)
    filled = years.columns[years.notna().any()]
    if filled.empty:
        raise ValueError("statsmodels' fertility data set holds no values")
    return years.loc[:, : filled.max()]


def m4_rows(panel: pd.DataFrame, horizon: int) -> tuple[list[list], list[list], list[str]]:
    """(train rows, test rows, left-out countries with the reason): rows are [id, values...] in the M4 layout."""
    train, test, left_out = [], [], []
    for country, row in panel.iterrows():
        values = row.to_numpy()
        known = ~np.isnan(values)
        if not known[-1]:
            left_out.append(f"{country}: no value in {panel.columns[-1]}")
            continue
        values = values[np.argmax(known):]
        if np.isnan(values).any():
            left_out.append(f"{country}: a gap after its first value")
        elif len(values) < MIN_YEARS:
            left_out.append(f"{country}: {len(values)} years, fewer than {MIN_YEARS}")
        else:
            train.append([country, *values[:-horizon]])
            test.append([country, *values[-horizon:]])
    return train, test, left_out


def write_m4_layout(directory: Path) -> int:
    """``Yearly-train.csv`` and ``Yearly-test.csv`` of the fertility panel in ``directory``; returns the series."""
    train, test, left_out = m4_rows(fertility_panel(), M4_HORIZON[FREQUENCY])
    if not train:
        raise ValueError("no country of statsmodels' fertility data set qualifies as a series")
    write_m4(directory, FREQUENCY, train, test)
    print(f"fertility: {len(train)} countries as series, {len(left_out)} left out "
          f"(e.g. {'; '.join(left_out[:3])})", flush=True)
    return len(train)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for the M4-layout files (default: a temporary one)")
    args, rest = parser.parse_known_args(argv)
    if any(a == "--data" or a.startswith("--data=") or a.startswith("--frequency") for a in rest):
        parser.error("--data and --frequency are this script's own: it writes the files and runs Yearly")
    with tempfile.TemporaryDirectory(prefix="fertility-") as scratch:
        directory = args.out or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        write_m4_layout(directory)
        return accuracy.main(["--data", str(directory), "--frequency", FREQUENCY, *rest])


if __name__ == "__main__":
    sys.exit(main())
