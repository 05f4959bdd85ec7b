"""The command line as a user meets it: help with examples, global flags anywhere, a quiet start,
`series list` against the real embedded PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forecasting.cli import _parser
from forecasting.cli import main as cli_main


def test_help_is_plain_text_with_examples():
    text = _parser().format_help()
    assert "``" not in text
    assert "examples:" in text and "forecasting predict --config examples/demo.yaml --horizon 26" in text
    assert "series list" in text


@pytest.mark.parametrize("argv", [["-q", "series", "list"], ["series", "list", "-q"],
                                  ["series", "list", "--quiet", "--database-url", "postgresql://x/y"]])
def test_global_flags_are_accepted_before_or_after_the_command(argv):
    args = _parser().parse_args(argv)
    assert args.quiet is True and args.func.__name__ == "_cmd_series_list"
    assert args.database_url == ("postgresql://x/y" if "--database-url" in argv else None)


def test_series_list_and_a_quiet_start(database, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    assert cli_main(["series", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no series stored yet: run 'forecasting ingest --config FILE'"
    (tmp_path / "a.csv").write_text("ts,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 11)))
    (tmp_path / "p.yaml").write_text("name: p\nseries: [{name: a, source: csv, params: {path: a.csv}}]\n")
    assert cli_main(["ingest", "--config", str(tmp_path / "p.yaml"), "-q"]) == 0
    capsys.readouterr()
    assert cli_main(["series", "list", "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "1 stored series"
    assert lines[1].split() == ["series", "source", "freq", "version", "versions", "rows", "first", "last"]
    assert lines[3].split()[:7] == ["a", "csv", "D", "1", "1", "10", "2024-01-01"]


def test_the_embedded_server_is_not_announced_on_every_command():
    import shutil
    import tempfile

    data_dir = tempfile.mkdtemp(prefix="forecasting-cli-")  # not under pytest's private tmp root
    env = {"FORECASTING_DATA_DIR": data_dir, "PATH": "/usr/bin:/bin"}
    try:
        result = subprocess.run([sys.executable, "-m", "forecasting", "db", "url"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("postgresql://") and result.stderr == ""
    finally:
        subprocess.run([sys.executable, "-m", "forecasting", "-q", "db", "stop"], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_bad_as_of_is_a_clear_error_not_a_traceback(database, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    (tmp_path / "a.csv").write_text("ts,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 11)))
    (tmp_path / "p.yaml").write_text("name: p\nseries: [{name: a, source: csv, params: {path: a.csv}}]\n")
    assert cli_main(["-q", "ingest", "--config", str(tmp_path / "p.yaml")]) == 0
    capsys.readouterr()
    # 'nan' and '' read as no instant at all, which showed the current data with exit 0; '-1' as a year before 1
    for value in ("garbage", "nan", "", "NaT", "-1"):
        assert cli_main(["series", "show", "a", "--as-of", value]) == 2, value
        out, err = capsys.readouterr()
        assert f"error: series 'a': as_of {value!r} is not a timestamp (e.g. 2026-11-01T00:00:00Z)" in err
        assert "Traceback" not in err and out == ""


def test_a_reader_that_stops_early_ends_the_command_quietly(database):
    """`forecasting series list | head`: the pipe closes before the command writes; no BrokenPipeError traceback."""
    import os

    env = {**os.environ, "FORECASTING_DATABASE_URL": database.url}
    command = subprocess.Popen([sys.executable, "-m", "forecasting", "series", "list"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    command.stdout.close()  # as head does once it has its lines; the command is still starting
    err = command.stderr.read().decode()
    assert command.wait(timeout=120) == 141  # 128 + SIGPIPE, as a tool the signal ended
    assert err == ""
