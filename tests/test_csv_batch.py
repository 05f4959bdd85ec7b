"""Small CSV files of one layout read in one pass (forecasting.sources.csv_batch): what each file gives, and
every error, must be exactly what a read of that file alone gives."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.errors import SourceError
from forecasting.ingest.pipeline import ingest
from forecasting.sources import csv_batch, csv_file, get_source
from forecasting.sources.csv_file import CsvParams
from forecasting.store.selectors import panel_read, stored_series

PLAIN = "ts,value\n2024-01-01,1.5\n2024-01-02,2.25\n2024-01-03,-3\n"

# files that must not be joined with others, each with the reason
AWKWARD = {
    "quoted": 'ts,value\n"2024-01-01",1\n"2024-01-02",2\n',
    "blank_line": "ts,value\n2024-01-01,1\n\n2024-01-02,2\n",
    "crlf": "ts,value\r\n2024-01-01,1\r\n2024-01-02,2\r\n",
    "lone_cr": "ts,value\r2024-01-01,1\r2024-01-02,2\r",
    "header_only": "ts,value\n",
}


def _outcome(params: CsvParams):
    """What fetch gives (frame and frequency) or the error's text."""
    try:
        result = get_source("csv").fetch(params, series="s")
    except SourceError as exc:
        return str(exc)
    return result.frame, result.frequency


def _alone(params: CsvParams):
    csv_batch._parsed.clear()
    csv_file._read_files.clear()
    return _outcome(params)


def _assert_same(batched, alone, name):
    if isinstance(alone, str) or isinstance(batched, str):
        assert batched == alone, name
        return
    pd.testing.assert_frame_equal(batched[0], alone[0], check_dtype=False, obj=name)
    assert batched[1] == alone[1], name


def _write(folder, files: dict[str, str]) -> dict[str, CsvParams]:
    params = {}
    for name, text in files.items():
        path = folder / f"{name}.csv"
        path.write_bytes(text.encode())
        params[name] = CsvParams(path=str(path))
    return params


def _check_batch(folder, files: dict[str, str], **extra) -> int:
    """Prefetch every file, fetch each, and compare with each file read alone; returns how many were joined."""
    params = {name: CsvParams(**{**p.model_dump(), **extra}) for name, p in _write(folder, files).items()}
    joined = csv_batch.prefetch(list(params.values()), timestamps=csv_file._timestamps,
                                stamp_of=csv_file._file_stamp)
    batched = {name: _outcome(p) for name, p in params.items()}
    for name, p in params.items():
        _assert_same(batched[name], _alone(p), name)
    return joined


def test_plain_files_are_read_together_and_give_what_each_gives_alone(tmp_path):
    files = {f"f{i}": PLAIN.replace("1.5", str(i)) for i in range(5)}
    files["ints"] = "ts,value\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n"
    files["unsorted_hourly"] = "ts,value\n2024-01-01 02:00,3\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n"
    files["missing_value"] = "ts,value\n2024-01-01,1\n2024-01-02,\n2024-01-03,3\n"
    files["missing_ts"] = "ts,value\n2024-01-01,1\n,2\n2024-01-03,3\n"
    files["no_final_newline"] = "ts,value\n2024-01-01,7"
    assert _check_batch(tmp_path, files) == len(files)


def test_awkward_files_are_left_to_their_own_read(tmp_path):
    files = {"a": PLAIN, "b": PLAIN, **AWKWARD}
    assert _check_batch(tmp_path, files) == 2


@pytest.mark.parametrize("odd", [
    "ts,value\n2024-01-01,1\n2024-01-02,oops\n",           # text makes the whole column text, in that file only
    "ts,value\n01/02/2024,1\n01/03/2024,2\n",              # not ISO 8601: the format is guessed per file
    "ts,value\n2024-01-01,1,extra\n2024-01-02,2,extra\n",  # longer rows: pandas takes a column as the index
    "ts,value\n2024-01-01,1\n2024-01-02,2,3\n",            # ragged: a parse error, named for this file
    "ts,value\n2024-01-01T00:00:00+02:00,1\n2024-01-02T00:00:00+02:00,2\n",  # offsets beside naive times
])
def test_a_file_the_group_cannot_read_as_its_own_read_does_declines_the_group(tmp_path, odd):
    assert _check_batch(tmp_path, {"a": PLAIN, "b": PLAIN, "odd": odd}) == 0


def test_layouts_are_grouped_by_header_and_settings(tmp_path):
    files = {"a": PLAIN, "b": PLAIN, "swapped1": "value,ts\n1,2024-01-01\n2,2024-01-02\n",
             "swapped2": "value,ts\n3,2024-01-01\n4,2024-01-02\n", "lonely": "ts,value,note\n2024-01-01,1,x\n"}
    assert _check_batch(tmp_path, files) == 4
    assert _check_batch(tmp_path, {"a": PLAIN, "b": PLAIN}, timezone="Europe/Berlin") == 2


def test_a_file_changed_after_the_batch_read_is_read_again(tmp_path):
    params = _write(tmp_path, {"a": PLAIN, "b": PLAIN})
    csv_batch.prefetch(list(params.values()), timestamps=csv_file._timestamps, stamp_of=csv_file._file_stamp)
    path = params["a"].path
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("2024-01-04,4\n")
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 10**9,) * 2)
    frame, _ = _outcome(params["a"])
    assert frame["value"].tolist() == [1.5, 2.25, -3, 4]


def test_ingest_of_many_files_stores_each_file_and_quarantines_only_the_bad_one(database, conn, tmp_path):
    files = {f"s{i}": f"ts,value\n2024-01-01,{i}\n2024-01-02,{i + 0.5}\n2024-01-03,{2 * i}\n" for i in range(6)}
    files["bad"] = "ts,value\n2024-01-01,1\n2024-01-02,oops\n2024-01-03,3\n"
    blocks = [{"name": name, "source": "csv", "params": {"path": str(p.path)}}
              for name, p in _write(tmp_path, files).items()]
    report = ingest(database, parse_config({"name": "many", "series": blocks}))
    outcomes = {r.series_name: r.outcome for r in report.records}
    assert outcomes == {**{f"s{i}": "initial" for i in range(6)}, "bad": "quarantined"}
    stored = stored_series(conn, keys=[("csv", f"s{i}") for i in range(6)])
    panel = panel_read(conn, series_ids=[s.series_id for s in stored.values()],
                       keys={s.series_id: s.name for s in stored.values()})
    for i in range(6):
        assert panel.loc[panel["series"] == f"s{i}", "y"].tolist() == [i, i + 0.5, 2 * i]
    assert {s.frequency for s in stored.values()} == {"D"}


@pytest.mark.parametrize("dates, settings", [
    (["2024-01-01", "2024-01-02", "2024-01-03"], {}),
    (["2024-03-01T12:00:00+02:00", "2024-03-01T13:00:00+02:00", "2024-03-01T14:00:00+01:00"], {}),  # mixed offsets
    (["03/01/2024", "04/01/2024", "05/01/2024"], {}),  # no ISO: a guessed format
    (["03/01/2024", "04/01/2024", "05/01/2024"], {"date_format": "%d/%m/%Y"}),
    (["2024-07-01 09:00", "2024-07-01 10:00", ""], {"timezone": "Europe/Berlin"}),
    (["", "", ""], {}),
])
def test_a_long_files_members_are_what_a_file_of_their_own_rows_gives(tmp_path, dates, settings):
    ids = ["007", "b", "c"]
    rows = [(i, d, n * 10 + k) for n, i in enumerate(ids) for k, d in enumerate(dates)]
    (tmp_path / "long.csv").write_text("id,ts,value\n" + "".join(f"{i},{d},{v}\n" for i, d, v in rows))
    for name in ids:
        (tmp_path / f"{name}.csv").write_text("ts,value\n" + "".join(f"{d},{v}\n" for i, d, v in rows if i == name))
        member = CsvParams(path=str(tmp_path / "long.csv"), filter_column="id", filter_value=name, **settings)
        _assert_same(_alone(member), _alone(CsvParams(path=str(tmp_path / f"{name}.csv"), **settings)), name)
