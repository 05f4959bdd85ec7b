"""The README's first command prints what the README shows: the demo's champions, backtest scores and forecast
counts, run on a fresh database (the embedded PostgreSQL), so the first thing a new user reads is not stale."""

from __future__ import annotations

import re
from pathlib import Path

from forecasting.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


def _readme_demo_output() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "forecasting run --config examples/demo.yaml" in readme.split("\n## ", 1)[0]
    block = re.search(r"```\n(ingest run 1 succeeded.*?)```", readme, flags=re.DOTALL)
    assert block, "the README's sample output of the demo run is missing"
    return block.group(1)


def test_the_readme_shows_what_the_demo_run_prints(database, capsys, monkeypatch):
    monkeypatch.setenv("FORECASTING_DATABASE_URL", database.url)
    monkeypatch.chdir(ROOT)
    assert cli_main(["run", "--config", "examples/demo.yaml", "-q"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip().splitlines() == _readme_demo_output().strip().splitlines()
