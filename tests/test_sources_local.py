"""The offline sources: CSV files (column mapping, formats, filters, time zones) and statsmodels samples."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from forecasting.errors import PermanentSourceError
from forecasting.sources import get_source
from forecasting.sources.base import ValueBounds
from forecasting.sources.csv_file import CsvParams
from forecasting.sources.sample import SampleParams


def _fetch_csv(tmp_path, text: str, **params):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    source = get_source("csv")
    return source.fetch(CsvParams(path=str(path), **params), series="s")


def test_csv_column_mapping_date_format_and_sorting(tmp_path):
    result = _fetch_csv(
        tmp_path,
        "day;amount\n03/01/2024;3\n01/01/2024;1\n02/01/2024;2\n",
        timestamp_column="day",
        value_column="amount",
        date_format="%d/%m/%Y",
        separator=";",
    )
    assert result.frame["ts"].tolist() == list(pd.date_range("2024-01-01", periods=3, freq="D"))
    assert result.frame["value"].tolist() == [1, 2, 3]
    assert result.frequency == "D"


def test_csv_filter_selects_one_series_of_a_long_file(tmp_path):
    text = "ts,region,value\n2024-01-01,north,1\n2024-01-01,south,5\n2024-01-02,north,2\n2024-01-02,south,6\n"
    result = _fetch_csv(tmp_path, text, filter_column="region", filter_value="south")
    assert result.frame["value"].tolist() == [5, 6]
    with pytest.raises(PermanentSourceError, match=r"\[csv:s\] no rows in .* where region == 'east'"):
        _fetch_csv(tmp_path, text, filter_column="region", filter_value="east")


def test_csv_timestamps_become_naive_utc(tmp_path):
    aware = _fetch_csv(tmp_path, "ts,value\n2024-03-01T12:00:00+02:00,1\n2024-03-01T13:00:00+02:00,2\n")
    assert aware.frame["ts"].tolist() == [pd.Timestamp("2024-03-01 10:00"), pd.Timestamp("2024-03-01 11:00")]
    local = _fetch_csv(tmp_path, "ts,value\n2024-07-01 09:00,1\n", timezone="Europe/Berlin")
    assert local.frame["ts"].tolist() == [pd.Timestamp("2024-07-01 07:00")]
    assert local.frame["ts"].dtype == "datetime64[ns]"


def test_csv_missing_column_and_file_are_permanent_errors(tmp_path):
    with pytest.raises(PermanentSourceError, match=r"column\(s\) 'price' not in .* \(columns: ts, value\)") as info:
        _fetch_csv(tmp_path, "ts,value\n2024-01-01,1\n", value_column="price")
    assert info.value.retryable is False and info.value.series == "s"
    with pytest.raises(PermanentSourceError, match="CSV file not found"):
        get_source("csv").fetch(CsvParams(path=str(tmp_path / "nope.csv")), series="s")


def test_csv_params_validation():
    with pytest.raises(ValidationError, match="filter_column and filter_value go together"):
        CsvParams(path="x.csv", filter_column="region")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CsvParams(path="x.csv", colum="x")
    assert get_source("csv").bounds(CsvParams(path="x", min_value=0)) == ValueBounds(min_value=0)


@pytest.mark.parametrize(
    ("params", "freq", "first", "length"),
    [
        ({"dataset": "co2"}, "W-SAT", ("1958-03-29", 316.1), 2284),
        ({"dataset": "macrodata", "column": "realgdp"}, "QS-JAN", ("1959-01-01", 2710.349), 203),
        ({"dataset": "sunspots"}, "YS-JAN", ("1700-01-01", 5.0), 309),
        ({"dataset": "nile"}, "YS-JAN", ("1871-01-01", 1120.0), 100),
    ],
)
def test_sample_datasets_load_offline(params, freq, first, length):
    result = get_source("sample").fetch(SampleParams(**params), series="x")
    assert result.frequency == freq
    assert len(result.frame) == length
    assert (result.frame["ts"].iloc[0], result.frame["value"].iloc[0]) == (pd.Timestamp(first[0]), first[1])
    assert result.frame["ts"].is_monotonic_increasing


def test_sample_params_and_bounds():
    with pytest.raises(ValidationError, match="macrodata needs column"):
        SampleParams(dataset="macrodata")
    with pytest.raises(ValidationError, match="has a single series; remove 'column'"):
        SampleParams(dataset="co2", column="co2")
    source = get_source("sample")
    assert source.bounds(SampleParams(dataset="co2")) == ValueBounds(min_value=0, strict_min=True)
    assert source.bounds(SampleParams(dataset="macrodata", column="unemp")) == ValueBounds(min_value=0)
    assert source.bounds(SampleParams(dataset="macrodata", column="infl")) == ValueBounds()


@pytest.mark.parametrize(("timestamps", "alias"), [
    (pd.date_range("2024-01-01", periods=100, freq="D").delete(range(40, 54)), "D"),  # a two-week gap
    (pd.date_range("2020-01-31", periods=40, freq="ME").delete([5, 6]), "ME"),
    (pd.date_range("2024-01-07", periods=30, freq="W-SUN").delete([3, 10]), "W-SUN"),
    (pd.bdate_range("2024-01-02", periods=60).delete([13, 40]), "B"),  # trading days with two holidays
    (pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05T03:00", "2024-01-09"], format="ISO8601"), None),
])
def test_gaps_do_not_hide_the_frequency_but_off_grid_points_do(timestamps, alias):
    from forecasting.sources.base import infer_frequency

    assert infer_frequency(pd.Series(timestamps)) == alias


def test_a_daily_series_with_a_gap_is_stored_as_daily_and_modelled(database, tmp_path, conn, caplog):
    import logging

    from forecasting.config import parse_config
    from forecasting.ingest import ingest
    from forecasting.run import execute

    ts = pd.date_range("2024-01-01", periods=120, freq="D").delete(range(60, 74))
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%d"), "value": [float(i % 9) for i in range(len(ts))]}).to_csv(
        tmp_path / "gap.csv", index=False)
    config = parse_config({"name": "gap", "series": [{"name": "gap", "source": "csv",
                                                      "params": {"path": str(tmp_path / "gap.csv")}}],
                           "models": {"enabled": ["naive"]}, "backtest": {"n_windows": 2, "modes": ["latest"]}})
    ingest(database, config)
    assert conn.execute("SELECT frequency FROM series WHERE name = 'gap'").fetchone()[0] == "D"
    with caplog.at_level(logging.INFO, logger="forecasting.steps.data"):
        report = execute(database, config, command="train")
    assert report.status == "succeeded"
    assert "series gap: 14 missing D timestamp(s) forward-filled" in caplog.text
