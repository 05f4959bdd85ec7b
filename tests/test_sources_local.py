"""The offline sources: CSV files (column mapping, formats, filters, time zones) and statsmodels samples."""

from __future__ import annotations

import numpy as np
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
    from forecasting.ingest.pipeline import ingest
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


def _long_csv(tmp_path, ids: list[str], *, periods: int = 60):
    rng = np.random.default_rng(0)
    rows = []
    for k, series_id in enumerate(ids):
        for i, day in enumerate(pd.date_range("2024-01-01", periods=periods, freq="D")):
            noise = 0.0 if i < 2 else round(float(rng.normal(0, 1)), 2)
            rows.append({"store": series_id, "day": day.strftime("%Y-%m-%d"), "sales": 10.0 * (k + 1) + i % 7 + noise})
    path = tmp_path / "sales.csv"
    pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(path, index=False)  # rows in any order
    return path


def _long_config(path, **params):
    from forecasting.config import parse_config

    return parse_config({"name": "long", "series": [{"name": "stores", "source": "csv", "params": {
        "path": str(path), "series_column": "store", "timestamp_column": "day", "value_column": "sales", **params}}],
        "models": {"enabled": ["naive", "linear"]}, "backtest": {"n_windows": 2, "modes": ["latest"]}})


def test_a_series_column_makes_one_series_per_value_reading_the_file_once(database, conn, tmp_path, monkeypatch):
    from forecasting.ingest.pipeline import ingest
    from forecasting.run import execute
    from forecasting.sources import csv_file

    path = _long_csv(tmp_path, ["007", "A 1", "b"])
    reads = []
    original = csv_file.pd.read_csv
    monkeypatch.setattr(csv_file.pd, "read_csv", lambda *a, **k: reads.append(a[0]) or original(*a, **k))
    config = _long_config(path, series_prefix="store_")
    report = ingest(database, config)
    assert sorted((r.series_name, r.outcome) for r in report.records) == [
        ("store_007", "initial"), ("store_A_1", "initial"), ("store_b", "initial")]
    assert reads == [str(path)], "the long file must be read once for all its series"
    rows = conn.execute("SELECT name, frequency, params->>'filter_value' FROM series ORDER BY name").fetchall()
    assert rows == [("store_007", "D", "007"), ("store_A_1", "D", "A 1"), ("store_b", "D", "b")]
    stored = conn.execute("SELECT value FROM observations o JOIN series s USING (series_id) "
                          "WHERE s.name = 'store_b' ORDER BY ts LIMIT 2").fetchall()
    assert [v for (v,) in stored] == [30.0, 31.0]  # the third id's own rows, in time order

    run = execute(database, config, command="train")  # modeling lists the members from the store
    assert run.status == "succeeded", conn.execute("SELECT * FROM series_skips").fetchall()
    assert sorted(run.champions["series"]) == ["store_007", "store_A_1", "store_b"]


def test_series_column_values_that_make_no_valid_name_are_refused(database, tmp_path):
    from forecasting.errors import ConfigError
    from forecasting.ingest.pipeline import ingest

    path = _long_csv(tmp_path, ["-1", "ok"])
    with pytest.raises(ConfigError, match=r"value '-1' of column 'store' gives the series name '-1'.*series_prefix"):
        ingest(database, _long_config(path))
    with pytest.raises(ValidationError, match="cannot be combined with filter_column"):
        CsvParams(path="x.csv", series_column="store", filter_column="store", filter_value="a")


def test_a_missing_long_file_fails_its_block_by_name(database, tmp_path):
    from forecasting.ingest.pipeline import ingest
    from forecasting.ingest.series_groups import GroupFailure

    with pytest.raises(GroupFailure, match=r"series block 'stores': cannot list its series: .*CSV file not found"):
        ingest(database, _long_config(tmp_path / "absent.csv"))


def test_ingest_warns_about_a_download_that_drops_stored_points(database, conn, tmp_path, caplog):
    import logging

    from forecasting.config import parse_config
    from forecasting.ingest.pipeline import ingest

    path = tmp_path / "short.csv"
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    pd.DataFrame({"ts": days.strftime("%Y-%m-%d"), "value": range(40)}).to_csv(path, index=False)
    config = parse_config({"name": "short", "series": [{"name": "s", "source": "csv", "params": {"path": str(path)}}]})
    ingest(database, config)
    pd.DataFrame({"ts": days[:5].strftime("%Y-%m-%d"), "value": [9.0] * 5}).to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="forecasting.ingest.pipeline"):
        report = ingest(database, config)
    assert report.records[0].outcome == "revised"
    assert "series 's': the download has 5 point(s) and drops 35 stored point(s); stored as version 2" in caplog.text
    pd.DataFrame({"ts": ["2024-01-01", "2024-01-02"], "value": [1.0, 2.0]}).to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="forecasting.ingest.pipeline"):
        ingest(database, config)
    assert "series 's': no frequency can be inferred from its 2 timestamp(s)" in caplog.text
    assert "W-MON … W-SUN" in caplog.text  # the valid aliases are listed


def test_airflow_ingest_shards_list_the_members_of_a_long_file(tmp_path):
    import yaml

    from forecasting.orchestration import plan_shards

    path = _long_csv(tmp_path, ["a", "b", "c"])
    config_path = tmp_path / "long.yaml"
    config_path.write_text(yaml.safe_dump({"name": "long", "series": [{"name": "stores", "source": "csv", "params": {
        "path": str(path), "series_column": "store", "timestamp_column": "day", "value_column": "sales"}}]}))
    shards = plan_shards(str(config_path), only=None, shard_size=2)
    assert [shard["names"] for shard in shards] == [["a", "b"], ["c"]]


def _numeric_ids_csv(tmp_path):
    """`store,date,value` with ids written as numbers: 1 and 2 (28 rows each) and 00 (zero-padded)."""
    days = pd.date_range("2024-01-01", periods=28, freq="D").strftime("%Y-%m-%d")
    rows = [f"{store},{day},{k + i % 5}" for k, store in enumerate(["1", "2", "00"]) for i, day in enumerate(days)]
    path = tmp_path / "stores.csv"
    path.write_text("store,date,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_numeric_ids_of_a_long_file_are_series_named_as_written(database, conn, tmp_path):
    """pandas read the ids as integers: ingest failed with "expected string or bytes-like object, got 'int'", and
    '00' would have become 0."""
    from forecasting.config import parse_config
    from forecasting.ingest.pipeline import ingest

    config = parse_config({"name": "stores", "series": [{"name": "stores", "source": "csv", "params": {
        "path": str(_numeric_ids_csv(tmp_path)), "series_column": "store", "timestamp_column": "date"}}]})
    report = ingest(database, config)
    assert sorted((r.series_name, r.outcome, r.n_rows) for r in report.records) == [
        ("00", "initial", 28), ("1", "initial", 28), ("2", "initial", 28)]
    assert conn.execute("SELECT name, params->>'filter_value' FROM series ORDER BY name").fetchall() == [
        ("00", "00"), ("1", "1"), ("2", "2")]
    assert ingest(database, config).records[0].outcome == "unchanged"  # the members listed again, from the file


@pytest.mark.parametrize("value", [1, "1"])
def test_a_filter_value_written_as_a_number_matches_its_rows(tmp_path, value):
    path = _numeric_ids_csv(tmp_path)
    result = get_source("csv").fetch(CsvParams(path=str(path), timestamp_column="date", filter_column="store",
                                               filter_value=value), series="s")
    assert len(result.frame) == 28 and result.frame["value"].tolist()[:3] == [0, 1, 2]
    padded = get_source("csv").fetch(CsvParams(path=str(path), timestamp_column="date", filter_column="store",
                                               filter_value="00"), series="s")
    assert padded.frame["value"].tolist()[:3] == [2, 3, 4]  # '00' is not '0' or 0
    with pytest.raises(PermanentSourceError, match="no rows in .* where store == '0'"):
        get_source("csv").fetch(CsvParams(path=str(path), timestamp_column="date", filter_column="store",
                                          filter_value="0"), series="s")


@pytest.mark.parametrize(("timestamps", "change"), [
    (pd.date_range("2024-01-01", "2024-04-09").append(pd.date_range("2024-05-01", "2029-12-01", freq="MS")),
     ("D", "MS", "2024-04-09", "2024-05-01")),
    (pd.date_range("2010-01-01", "2024-01-01", freq="MS").append(pd.date_range("2024-01-02", periods=30)),
     ("MS", "D", "2024-01-01", "2024-01-02")),  # monthly for longer: the daily stretch is the unusual one
    (pd.date_range("2024-01-01", periods=60).append(pd.date_range("2024-03-03", periods=20, freq="W-SUN")),
     ("D", "W-SUN", "2024-02-29", "2024-03-03")),
    (pd.date_range("2024-01-01", periods=100).delete(list(range(40, 54)) + list(range(55, 60))), None),  # gaps
    (pd.date_range("2024-01-07", periods=40, freq="W-SUN").delete([11, 13, 15, 17]), None),  # every other week
    (pd.bdate_range("2024-01-02", periods=200).delete([13, 40]), None),
    (pd.date_range("2000-01-01", periods=100, freq="MS").delete([5, 6, 7]), None),
])
def test_a_frequency_change_is_told_from_gaps(timestamps, change):
    from forecasting.sources.base import frequency_change

    found = frequency_change(pd.Series(timestamps))
    assert (found and (found.before, found.after, str(found.last_before.date()), str(found.first_after.date()))
            ) == change


def test_a_series_whose_frequency_changes_is_refused_at_ingest_naming_where(database, conn, tmp_path):
    """Daily, then monthly until 2029, was stored as daily (modeling filled the months day by day)."""
    from forecasting.config import parse_config
    from forecasting.ingest.pipeline import ingest

    days = pd.date_range("2024-01-01", "2024-04-09").append(pd.date_range("2024-05-01", "2029-12-01", freq="MS"))
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "value": range(len(days))}).to_csv(tmp_path / "mixed.csv",
                                                                                       index=False)
    pd.DataFrame({"ts": days[:50].strftime("%Y-%m-%d"), "value": range(50)}).to_csv(tmp_path / "daily.csv",
                                                                                   index=False)
    config = parse_config({"name": "mixed", "series": [
        {"name": "mixed", "source": "csv", "params": {"path": str(tmp_path / "mixed.csv"), "timestamp_column": "day"}},
        {"name": "daily", "source": "csv", "params": {"path": str(tmp_path / "daily.csv")}}]})
    report = ingest(database, config)
    by_name = {r.series_name: r for r in report.records}
    assert by_name["daily"].outcome == "initial" and by_name["daily"].n_rows == 50
    assert by_name["mixed"].outcome == "failed" and by_name["mixed"].retryable is False
    assert by_name["mixed"].error == (
        "series 'mixed': field 'day': the frequency changes after 2024-04-09: D until then, MS from 2024-05-01; a "
        "series has one frequency: store each part as a series of its own (or, if the points are one grid with "
        "gaps, set 'frequency' in the config)")
    assert conn.execute("SELECT name FROM series").fetchall() == [("daily",)]  # nothing of 'mixed' is stored
    assert conn.execute("SELECT count(*) FROM observations").fetchone()[0] == 50
