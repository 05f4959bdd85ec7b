"""The pure modules reach no store module, not even through the modules they import: screening, frequencies,
folds, backtests, features, panels, metrics and evaluation run without a database (their dataclasses, such as
``forecasting.skips.Skip``, live in pure modules that the store imports, not the other way round)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PURE = ["forecasting.steps.screen", "forecasting.frequency", "forecasting.backtesting.folds",
        "forecasting.backtesting.backtest", "forecasting.features.build", "forecasting.features.panel",
        "forecasting.backtesting.metrics", "forecasting.backtesting.evaluation",
        "forecasting.skips", "forecasting.config", "forecasting.models.registry"]
FORBIDDEN = ("forecasting.store", "forecasting.db")


def _file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _imported(module: str) -> set[str]:
    """The package modules ``module`` imports anywhere (lazy imports in functions too; imports for type checkers
    only are left out), with the packages whose ``__init__`` each of them runs."""
    path = _file(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    not_loaded = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    # a package's module-level __getattr__ (PEP 562) loads a moved module's names only when an old import path asks
    # for them (``from forecasting.ingest import ingest``), never when the package is merely a parent
    not_loaded |= {id(n) for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for n in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in not_loaded:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    found = set()
    for name in names:
        if name.split(".")[0] != "forecasting":
            continue
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {name for name in found if _file(name) is not None}


def _reached(module: str) -> dict[str, str | None]:
    """Every package module reachable from ``module`` by imports -> the module that imports it first."""
    via: dict[str, str | None] = {module: None}
    todo = [module]
    while todo:
        current = todo.pop()
        for name in sorted(_imported(current)):
            if name not in via:
                via[name] = current
                todo.append(name)
    return via


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_reaches_no_store_module(module):
    via = _reached(module)
    bad = sorted(name for name in via if name.startswith(FORBIDDEN))
    chains = []
    for name in bad:
        chain, step = [], name
        while step is not None:
            chain.append(step)
            step = via[step]
        chains.append(" <- ".join(chain))
    assert not bad, "\n".join(chains)


def test_the_walk_finds_a_store_import():
    # the walk itself works: the steps that write reach the store
    assert any(name.startswith("forecasting.store") for name in _reached("forecasting.steps.train"))
