"""Repository hygiene that CI enforces: ruff is clean, pure modules stay free of I/O libraries."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed; it is pinned in requirements.txt")
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


PURE = ["forecasting/store/diff.py", "forecasting/store/binary_copy.py", "forecasting/analysis/signals.py",
        "forecasting/web/charts.py", "forecasting/backtesting/folds.py", "forecasting/backtesting/backtest.py",
        "forecasting/backtesting/metrics.py", "forecasting/backtesting/evaluation.py",
        "forecasting/backtesting/intervals.py", "forecasting/features/build.py", "forecasting/features/panel.py",
        "forecasting/frequency.py", "forecasting/steps/partitions.py", "forecasting/skips.py",
        "forecasting/steps/screen.py", "forecasting/steps/table.py",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "forecasting" / "models").glob("*.py"))]


def _imports(module: str) -> set[str]:
    """What ``module`` imports when it runs (imports for type checkers only are left out)."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    nodes = [node for node in ast.walk(tree) if id(node) not in typing_only]
    imported = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    return imported | {node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_not_import_io_libraries_or_the_store(module):
    imported = _imports(module)
    assert not {name.split(".")[0] for name in imported} & {"psycopg", "sqlalchemy", "airflow", "requests"}
    assert not {name for name in imported if name.startswith(("forecasting.store", "forecasting.db"))}


def test_reading_a_config_loads_no_download_library_and_no_database_driver():
    code = ("import sys\n"
            "from forecasting.config import parse_config\n"
            "parse_config({'name': 'x', 'series': [\n"
            "    {'name': 'a', 'source': 'yahoo_finance', 'params': {'ticker': 'AAPL'}},\n"
            "    {'name': 'b', 'source': 'google_trends', 'params': {'keyword': 'python'}}]})\n"
            "print(sorted(m for m in ('yfinance', 'pytrends', 'psycopg') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
