"""Ingest end to end on the real embedded PostgreSQL: quarantine, isolation of failures, retries, CLI."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pandas as pd
import pytest

from forecasting.cli import main as cli_main
from forecasting.config import parse_config
from forecasting.errors import ConfigError
from forecasting.ingest.pipeline import ingest
from forecasting.store.selectors import series_read, series_versions_list

GOOD = "ts,value\n2024-01-01,10\n2024-01-02,11\n2024-01-03,12.5\n2024-01-04,13\n"


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _config(series: list[dict], **extra) -> object:
    return parse_config({"name": "t", "series": series, "ingest": {"retries": 2, "retry_backoff_seconds": 1}, **extra})


def _csv_series(name: str, path: str, **params) -> dict:
    return {"name": name, "source": "csv", "params": {"path": path, **params}}


BAD_BATCHES = {
    "nan": (
        "ts,value\n2024-01-01,10\n2024-01-02,\n2024-01-03,12\n",
        "expect_column_values_to_not_be_null(value): 1 unexpected",
    ),
    "duplicate_ts": (
        "ts,value\n2024-01-01,10\n2024-01-01,11\n2024-01-03,12\n",
        "expect_column_values_to_be_unique(ts): 2 unexpected",
    ),
    "out_of_bounds": (
        "ts,value\n2024-01-01,10\n2024-01-02,140\n2024-01-03,12\n",
        "expect_column_values_to_be_between(value, min 0, max 100): 1 unexpected",
    ),
    "strings": (
        "ts,value\n2024-01-01,10\n2024-01-02,twelve\n2024-01-03,12\n",
        "expect_column_values_to_be_in_type_list(value",
    ),
    "empty": ("ts,value\n", "frame is empty (0 rows)"),
    "bad_date": ("ts,value\n2024-01-01,10\nyesterday,11\n", "expect_column_values_to_not_be_null(ts): 1 unexpected"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_batch_is_quarantined_and_stored_data_is_untouched(database, conn, tmp_path, case):
    text, expected_reason = BAD_BATCHES[case]
    path = _write(tmp_path, "s", GOOD)
    series = [_csv_series("s", path, min_value=0, max_value=100), _csv_series("other", _write(tmp_path, "o", GOOD))]
    first = ingest(database, _config(series))
    assert [r.outcome for r in first.records] == ["initial", "initial"]
    before = series_read(conn, name="s")

    Path(path).write_text(text, encoding="utf-8")
    Path(tmp_path / "o.csv").write_text(GOOD + "2024-01-05,14\n", encoding="utf-8")
    report = ingest(database, _config(series))

    outcome = {r.series_name: r for r in report.records}
    assert outcome["s"].outcome == "quarantined"
    assert outcome["s"].error.startswith("series 's': ")
    assert expected_reason in outcome["s"].error
    assert outcome["other"].outcome == "extended"  # the other series carried on
    pd.testing.assert_frame_equal(series_read(conn, name="s"), before)
    assert len(series_versions_list(conn, name="s")) == 1

    row = conn.execute(
        "SELECT series_name, reason, failed_expectations, validation_result, row_count, batch, ingest_run_id "
        "FROM quarantine"
    ).fetchone()
    name, reason, failed, gx_result, row_count, batch, run_id = row
    assert (name, run_id) == ("s", report.ingest_run_id)
    assert expected_reason in reason
    assert failed and all("expectation_type" in f for f in failed)
    assert gx_result["success"] is False and "statistics" in gx_result
    assert row_count == len(batch) == text.count("\n") - 1
    status = conn.execute(
        "SELECT status, n_series, n_failed FROM ingest_runs WHERE ingest_run_id = %s", (report.ingest_run_id,)
    ).fetchone()
    assert status == ("partial", 2, 1)


def test_missing_values_policy_drop(database, conn, tmp_path):
    path = _write(tmp_path, "s", "ts,value\n2024-01-01,10\n2024-01-02,\n2024-01-03,12\n")
    report = ingest(database, _config([{**_csv_series("s", path), "missing_values": "drop"}]))
    assert report.records[0].outcome == "initial"
    assert series_read(conn, name="s")["value"].tolist() == [10.0, 12.0]


def test_revision_and_extension_are_reported_per_series(database, conn, tmp_path):
    path = _write(tmp_path, "s", GOOD)
    config = _config([_csv_series("s", path)])
    ingest(database, config)
    Path(path).write_text(GOOD.replace("2024-01-02,11", "2024-01-02,11.5") + "2024-01-05,14\n", encoding="utf-8")
    report = ingest(database, config)
    record = report.records[0]
    assert (record.outcome, record.n_changed, record.n_added, record.n_removed) == ("revised", 1, 1, 0)
    assert report.version_numbers == {"s": 2}
    stored = conn.execute(
        "SELECT outcome, n_changed, n_added FROM ingest_results WHERE ingest_run_id = %s", (report.ingest_run_id,)
    ).fetchone()
    assert stored == ("revised", 1, 1)


class _FlakyCsv(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then the CSV; 404 for unknown paths."""

    failures = 0
    requests = 0
    status = 503

    def do_GET(self):  # noqa: N802 (http.server API)
        type(self).requests += 1
        if self.path != "/s.csv":
            self.send_error(404)
        elif type(self).requests <= type(self).failures:
            self.send_error(type(self).status)
        else:
            body = GOOD.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    _FlakyCsv.requests, _FlakyCsv.failures, _FlakyCsv.status = 0, 2, 503
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyCsv)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_retryable_http_errors_are_retried_with_backoff(database, conn, flaky_server):
    sleeps: list[float] = []
    report = ingest(database, _config([_csv_series("s", f"{flaky_server}/s.csv")]), sleep=sleeps.append)
    assert report.records[0].outcome == "initial"
    assert sleeps == [1.0, 2.0]  # exponential backoff from retry_backoff_seconds
    assert _FlakyCsv.requests == 3
    assert len(series_read(conn, name="s")) == 4


def test_http_429_is_a_retryable_rate_limit(database, flaky_server):
    _FlakyCsv.failures, _FlakyCsv.status = 10, 429
    report = ingest(database, _config([_csv_series("s", f"{flaky_server}/s.csv")]), sleep=lambda _: None)
    record = report.records[0]
    assert (record.outcome, record.retryable, record.rate_limited) == ("failed", True, True)
    assert "HTTP 429" in record.error


def test_permanent_errors_fail_at_once_and_name_the_series(database, conn, flaky_server):
    sleeps: list[float] = []
    series = [_csv_series("gone", f"{flaky_server}/gone.csv"), _csv_series("s", f"{flaky_server}/s.csv")]
    _FlakyCsv.failures = 0
    report = ingest(database, _config(series), sleep=sleeps.append)
    gone, ok = report.records
    assert (gone.outcome, gone.retryable) == ("failed", False)
    assert gone.error == f"[csv:gone] HTTP 404 fetching {flaky_server}/gone.csv"
    assert ok.outcome == "initial"
    assert sleeps == []


def test_retries_give_up_after_the_configured_attempts(database, flaky_server):
    _FlakyCsv.failures = 10
    sleeps: list[float] = []
    report = ingest(database, _config([_csv_series("s", f"{flaky_server}/s.csv")]), sleep=sleeps.append)
    assert (report.records[0].outcome, report.records[0].retryable) == ("failed", True)
    assert "HTTP 503" in report.records[0].error
    assert len(sleeps) == 2 and _FlakyCsv.requests == 3


def test_invalid_extra_expectation_is_a_config_error_before_anything_runs(database, tmp_path):
    spec = {**_csv_series("s", _write(tmp_path, "s", GOOD)), "expectations": [{"type": "expect_the_unexpected"}]}
    with pytest.raises(ConfigError, match="series 's'"):
        ingest(database, _config([spec]))


def test_extra_expectation_from_config_quarantines(database, tmp_path):
    spec = {
        **_csv_series("s", _write(tmp_path, "s", GOOD)),
        "expectations": [{"type": "expect_column_max_to_be_between", "kwargs": {"column": "value", "max_value": 12}}],
    }
    report = ingest(database, _config([spec]))
    assert report.records[0].outcome == "quarantined"
    assert "expect_column_max_to_be_between" in report.records[0].error


def test_cli_ingest_prints_summary_and_exits_nonzero_on_failure(database, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    good = _write(tmp_path, "good", GOOD)
    config = tmp_path / "p.yaml"
    config.write_text(
        json.dumps(
            {"name": "p", "series": [_csv_series("good", good), _csv_series("broken", str(tmp_path / "missing.csv"))]}
        ),
        encoding="utf-8",
    )

    assert cli_main(["-q", "ingest", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["series", "source", "outcome", "rows", "version", "detail"]
    assert lines[2].split()[:5] == ["good", "csv", "initial", "4", "1"]
    assert lines[3].split()[:3] == ["broken", "csv", "failed"] and "CSV file not found" in lines[3]
    assert "ingest run 1 partial: 1 new, 1 failed" in out

    assert cli_main(["-q", "ingest", "--config", str(config), "--series", "good"]) == 0
    assert "unchanged" in capsys.readouterr().out

    assert cli_main(["-q", "series", "show", "good", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ts,value",
        "2024-01-01,10.0",
        "2024-01-02,11.0",
        "2024-01-03,12.5",
        "2024-01-04,13.0",
    ]

    assert cli_main(["-q", "db", "url"]) == 0
    assert capsys.readouterr().out.strip() == database.url
    assert cli_main(["-q", "db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() == "schema is up to date"


def test_cli_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    config = tmp_path / "p.yaml"
    config.write_text("name: p\nseries: []\n", encoding="utf-8")
    assert cli_main(["-q", "ingest", "--config", str(config)]) == 2
    assert "series: List should have at least 1 item" in capsys.readouterr().err


def test_a_quarantined_download_changes_nothing_stored_about_the_series(database, tmp_path, conn):
    from forecasting.run import execute

    ts = pd.date_range("2024-01-01", periods=60, freq="D").strftime("%Y-%m-%d").tolist()
    for name in ("a", "b"):
        values = (50 + pd.Series(range(60)) * (0.5 if name == "a" else -0.3) + pd.Series(range(60)) % 7).round(3)
        pd.DataFrame({"ts": ts, "value": values}).to_csv(tmp_path / f"{name}.csv", index=False)
    config = parse_config({"name": "q", "series": [
        {"name": n, "source": "csv", "params": {"path": str(tmp_path / f"{n}.csv")}} for n in ("a", "b")],
        "models": {"enabled": ["naive"]}, "backtest": {"n_windows": 2, "modes": ["latest"]}})
    ingest(database, config)
    before = conn.execute("SELECT name, params, frequency, unit, updated_at FROM series ORDER BY name").fetchall()
    bad = pd.read_csv(tmp_path / "b.csv")
    bad.loc[40, "ts"] = "2024-02-30"  # not a date: the download fails validation
    bad.to_csv(tmp_path / "b.csv", index=False)
    report = ingest(database, config)
    assert {r.series_name: r.outcome for r in report.records} == {"a": "unchanged", "b": "quarantined"}
    after = conn.execute("SELECT name, params, frequency, unit, updated_at FROM series ORDER BY name").fetchall()
    assert after == before and before[1][2] == "D"
    forecast = execute(database, config, command="train")  # both series still model on what is stored
    assert forecast.status == "succeeded" and sorted(forecast.champions["series"]) == ["a", "b"]


@pytest.mark.parametrize(("rows", "field"), [
    ("2024-01-01,1\n2024-01-02,inf\n2024-01-03,3\n", "expect_column_values_to_be_between(value"),
    ("2024-01-01,1\n2024-01-02,1e309\n2024-01-03,3\n", "expect_column_values_to_be_between(value"),
    ("2024-01-01,1\n2024-01-02,1e308\n2024-01-03,3\n", "expect_column_values_to_be_between(value"),
    ("2024-01-01T00:00:00.000000000,1\n2024-01-01T00:00:00.000000001,2\n2024-01-01T00:00:00.000000002,3\n",
     "expect_column_values_to_be_unique(ts)"),
])
def test_values_the_models_cannot_use_and_sub_microsecond_timestamps_are_quarantined(database, tmp_path, conn, rows,
                                                                                   field):
    (tmp_path / "x.csv").write_text("ts,value\n" + rows, encoding="utf-8")
    config = parse_config({"name": "x", "series": [{"name": "x", "source": "csv",
                                                    "params": {"path": str(tmp_path / "x.csv")}}]})
    report = ingest(database, config)
    record = report.records[0]
    assert record.outcome == "quarantined" and field in record.error and record.error.startswith("series 'x'")
    assert conn.execute("SELECT count(*) FROM observations").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM quarantine WHERE series_name = 'x'").fetchone()[0] == 1


def test_two_configs_cannot_give_one_series_different_parameters(database, tmp_path, conn):
    for name, level in (("one", 10), ("two", 500)):
        (tmp_path / f"{name}.csv").write_text(
            "ts,value\n" + "".join(f"2024-01-{d:02d},{level + d}\n" for d in range(1, 21)), encoding="utf-8")
    first = parse_config({"name": "first", "series": [
        {"name": "g0", "source": "csv", "params": {"path": str(tmp_path / "one.csv")}}]})
    second = parse_config({"name": "second", "series": [
        {"name": "g0", "source": "csv", "params": {"path": str(tmp_path / "two.csv")}}]})
    assert ingest(database, first).records[0].outcome == "initial"
    refused = ingest(database, second).records[0]
    assert refused.outcome == "failed" and not refused.retryable
    assert refused.error.startswith("series 'g0' (csv) is already stored by config 'first' with other parameters")
    assert "rename it in config 'second'" in refused.error
    assert ingest(database, first).records[0].outcome == "unchanged"  # the owner's series is untouched
    assert conn.execute("SELECT count(*), max(config_name) FROM series_versions JOIN series USING (series_id)"
                        ).fetchone() == (1, "first")
    shared = parse_config({"name": "third", "series": [  # the same parameters: one series, shared
        {"name": "g0", "source": "csv", "params": {"path": str(tmp_path / "one.csv")}}]})
    assert ingest(database, shared).records[0].outcome == "unchanged"


def test_an_unchanged_file_is_not_even_parsed_and_any_change_is(database, conn, tmp_path, monkeypatch):
    from forecasting.config import parse_config
    from forecasting.ingest.pipeline import ingest
    from forecasting.sources.csv_file import CsvSource

    path = tmp_path / "s.csv"
    path.write_text("ts,value\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n")
    raw = {"name": "fp", "series": [{"name": "s", "source": "csv", "params": {"path": str(path)}}]}
    assert ingest(database, parse_config(raw)).records[0].outcome == "initial"
    fetches = []
    real_fetch = CsvSource.fetch
    monkeypatch.setattr(CsvSource, "fetch", lambda self, *a, **k: fetches.append(1) or real_fetch(self, *a, **k))

    assert ingest(database, parse_config(raw)).records[0].outcome == "unchanged"
    assert fetches == []  # the same bytes and settings: known unchanged without reading the rows
    path.write_text("ts,value\n2024-01-01,1.0\n2024-01-02,2.0\n2024-01-03,3.0\n")  # other bytes, same data
    assert ingest(database, parse_config(raw)).records[0].outcome == "unchanged" and len(fetches) == 1
    assert ingest(database, parse_config(raw)).records[0].outcome == "unchanged" and len(fetches) == 1
    stricter = {**raw, "series": [{**raw["series"][0], "expectations": [
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "value", "max_value": 2}}]}]}
    # other settings: the file is read again; its content is what is stored, so it stays unchanged (a rule
    # applies to what changes, it does not re-judge stored history)
    assert ingest(database, parse_config(stricter)).records[0].outcome == "unchanged" and len(fetches) == 2
    path.write_text("ts,value\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n2024-01-04,4\n")
    assert ingest(database, parse_config(stricter)).records[0].outcome == "quarantined" and len(fetches) == 3
    assert ingest(database, parse_config(raw)).records[0].outcome == "extended"
    assert conn.execute("SELECT count(*) FROM series_versions").fetchone()[0] == 1
