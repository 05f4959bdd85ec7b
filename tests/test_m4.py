"""read_m4: the real Weekly files, and small hand-written files for layout rules and errors."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from forecasting.backtesting.m4 import M4_FREQ, M4_HORIZON, M4_SEASON, M4_TRAIN_END, read_m4, write_m4
from forecasting.features.panel import validate_panel

M4_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "m4"


def _m4_dir() -> Path:
    if not (M4_DIR / "Weekly-train.csv").is_file() or not (M4_DIR / "Weekly-test.csv").is_file():
        pytest.fail(f"M4 Weekly data missing: expected Weekly-train.csv and Weekly-test.csv in {M4_DIR} "
                    "(the shared data folder sits beside the repository clone)")  # fmt: skip
    return M4_DIR


def _write(directory: Path, name: str, rows: list[list[str]]) -> None:
    """A file in the organisers' layout: every field quoted, rows padded with empty fields to one width."""
    width = max(len(r) for r in rows)
    header = ",".join(f'"V{i + 1}"' for i in range(width))
    lines = [",".join(f'"{v}"' if v != "" else "" for v in r + [""] * (width - len(r))) for r in rows]
    (directory / name).write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


def test_constants_cover_every_m4_frequency():
    names = ["Yearly", "Quarterly", "Monthly", "Weekly", "Daily", "Hourly"]
    assert [M4_HORIZON[n] for n in names] == [6, 8, 18, 13, 14, 48]
    assert [M4_SEASON[n] for n in names] == [1, 4, 12, 1, 1, 24]
    assert list(M4_FREQ) == names
    for name in names:
        assert pd.tseries.frequencies.to_offset(M4_FREQ[name]).is_on_offset(M4_TRAIN_END[name])


def test_read_m4_weekly_files():
    train, test = read_m4(_m4_dir())
    validate_panel(train)
    validate_panel(test)
    assert list(train.columns) == ["series", "ts", "y"]
    assert train["ts"].dtype == "datetime64[ns]" and train["y"].dtype == "float64"
    assert train["series"].nunique() == test["series"].nunique() == 359
    lengths = train.groupby("series").size()
    assert lengths.min() == 80 and lengths.max() == 2597
    assert (test.groupby("series").size() == 13).all()
    # every series ends training at the anchor and its test weeks follow on the W-SUN grid
    assert (train.groupby("series")["ts"].max() == pd.Timestamp("2000-01-02")).all()
    assert (test.groupby("series")["ts"].min() == pd.Timestamp("2000-01-09")).all()
    assert (test.groupby("series")["ts"].max() == pd.Timestamp("2000-04-02")).all()
    w1 = train[train["series"] == "W1"]
    assert (w1["ts"].diff().dropna() == pd.Timedelta(weeks=1)).all()
    # first and last values of W1 as they appear in the files
    assert test.loc[test["series"] == "W1", "y"].iloc[:2].tolist() == [35397.16, 35808.59]
    assert test.loc[test["series"] == "W1", "y"].iloc[-1] == 34066.95


def test_read_m4_aligns_rows_of_different_length_at_the_anchor(tmp_path):
    _write(tmp_path, "Monthly-train.csv", [["M1", "1", "2", "3"], ["M2", "7"]])
    _write(tmp_path, "Monthly-test.csv", [["M1", *map(str, range(10, 28))], ["M2", *map(str, range(30, 48))]])
    train, test = read_m4(tmp_path, "Monthly")
    assert train.to_dict("list") == {
        "series": ["M1", "M1", "M1", "M2"],
        "ts": [pd.Timestamp("1999-11-01"), pd.Timestamp("1999-12-01"), pd.Timestamp("2000-01-01"),
               pd.Timestamp("2000-01-01")],
        "y": [1.0, 2.0, 3.0, 7.0],
    }  # fmt: skip
    m1 = test[test["series"] == "M1"]
    assert m1["ts"].iloc[0] == pd.Timestamp("2000-02-01") and m1["ts"].iloc[-1] == pd.Timestamp("2001-07-01")
    assert m1["y"].iloc[0] == 10.0


def test_read_m4_keeps_very_long_yearly_series_in_seconds(tmp_path):
    _write(tmp_path, "Yearly-train.csv", [["Y1", *map(str, range(835))]])
    _write(tmp_path, "Yearly-test.csv", [["Y1", *map(str, range(6))]])
    train, test = read_m4(tmp_path, "Yearly")
    assert train["ts"].dtype == "datetime64[s]" and test["ts"].dtype == "datetime64[s]"
    assert train["ts"].iloc[0] == pd.Timestamp("1166-01-01") and train["ts"].iloc[-1] == pd.Timestamp("2000-01-01")
    assert test["ts"].iloc[-1] == pd.Timestamp("2006-01-01")


def test_read_m4_errors(tmp_path):
    with pytest.raises(ValueError, match=re.escape("unknown M4 frequency 'weekly'; expected one of ['Yearly',")):
        read_m4(tmp_path, "weekly")
    with pytest.raises(FileNotFoundError, match=re.escape(f"M4 file not found: {tmp_path / 'Daily-train.csv'}")):
        read_m4(tmp_path, "Daily")

    _write(tmp_path, "Daily-train.csv", [["D1", "1", "", "3"]])
    _write(tmp_path, "Daily-test.csv", [["D1", *["1"] * 14]])
    with pytest.raises(ValueError, match=re.escape("Daily-train.csv: rows with empty fields between values: ['D1']")):
        read_m4(tmp_path, "Daily")

    _write(tmp_path, "Daily-train.csv", [["D1", "1", "2"]])
    _write(tmp_path, "Daily-test.csv", [["D1", *["1"] * 13]])
    with pytest.raises(ValueError, match=re.escape("Daily-test.csv: rows without exactly 14 values: ['D1']")):
        read_m4(tmp_path, "Daily")

    _write(tmp_path, "Daily-test.csv", [["D2", *["1"] * 14]])
    with pytest.raises(
        ValueError, match=re.escape("Daily: train and test files hold different series, e.g. ['D1', 'D2']")
    ):
        read_m4(tmp_path, "Daily")


def test_write_m4_writes_what_read_m4_reads_back(tmp_path):
    train_rows = [["A", 1.5, 2.0, 3.25], ["B", 7.0]]  # ragged: B is padded with empty fields
    test_rows = [["A", *range(10, 18)], ["B", *range(30, 38)]]
    write_m4(tmp_path, "Quarterly", train_rows, test_rows)
    assert (tmp_path / "Quarterly-train.csv").read_text().splitlines() == ["V1,V2,V3,V4", "A,1.5,2.0,3.25", "B,7.0,,"]
    train, test = read_m4(tmp_path, "Quarterly")
    assert train.groupby("series")["y"].apply(list).to_dict() == {"A": [1.5, 2.0, 3.25], "B": [7.0]}
    assert test.groupby("series")["y"].apply(list).to_dict() == {"A": list(map(float, range(10, 18))),
                                                                  "B": list(map(float, range(30, 38)))}


@pytest.mark.parametrize(
    ("train_rows", "test_rows", "message"),
    [
        ([["A", 1.0]], [["B", *[1.0] * 8]], "Quarterly: train and test rows must hold each series once, e.g. ['A', 'B"),
        ([["A", 1.0], ["A", 2.0]], [["A", *[1.0] * 8]] * 2, "must hold each series once, e.g. ['A']"),
        ([["A"]], [["A", *[1.0] * 8]], "Quarterly-train: rows without values: ['A']"),
        ([["A", 1.0]], [["A", *[1.0] * 7]], "Quarterly-test: rows without exactly 8 values: ['A']"),
        ([], [], "Quarterly: no rows to write"),
    ],
    ids=["different-ids", "repeated-id", "empty-train-row", "short-test-row", "nothing"],
)
def test_write_m4_refuses_rows_read_m4_would_refuse_and_writes_nothing(tmp_path, train_rows, test_rows, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        write_m4(tmp_path, "Quarterly", train_rows, test_rows)
    assert list(tmp_path.iterdir()) == []
