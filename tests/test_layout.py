"""The tree shows the data flow: old import paths of moved modules still give the same objects, forecasting/ keeps
few top-level modules, and the README's Layout section lists exactly the package's folders and modules."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "forecasting"

# old module path -> where it lives now; each old path is a thin module that re-exports the new one
SHIMS = {
    "forecasting.backtest": "forecasting.backtesting.backtest",
    "forecasting.folds": "forecasting.backtesting.folds",
    "forecasting.evaluation": "forecasting.backtesting.evaluation",
    "forecasting.intervals": "forecasting.backtesting.intervals",
    "forecasting.m4": "forecasting.backtesting.m4",
    "forecasting.panel": "forecasting.features.panel",
}
# old modules that became a package of the same name: the package resolves the old names on first use
PACKAGES = {
    "forecasting.features": "forecasting.features.build",
    "forecasting.ingest": "forecasting.ingest.pipeline",
}
MAX_TOP_LEVEL_MODULES = 16  # ten that do the work, and the shims above


@pytest.mark.parametrize(("old", "new"), sorted(SHIMS.items()))
def test_an_old_module_path_gives_the_same_objects_as_the_new_one(old, new):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    assert new_module.__all__
    assert list(old_module.__all__) == list(new_module.__all__)
    for name in new_module.__all__:
        assert getattr(old_module, name) is getattr(new_module, name), name
    assert old_module.__doc__.startswith(f"Moved to ``{new}``")


@pytest.mark.parametrize(("old", "new"), sorted(PACKAGES.items()))
def test_a_package_that_replaced_a_module_resolves_the_old_names(old, new):
    package, module = importlib.import_module(old), importlib.import_module(new)
    names = {"forecasting.features": "_BUILD_NAMES", "forecasting.ingest": "_PIPELINE_NAMES"}[old]
    assert getattr(package, names) == set(module.__all__)
    for name in module.__all__:
        assert getattr(package, name) is getattr(module, name), name
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_old_import_statements_still_work():
    from forecasting.backtest import BacktestSpec, run_backtest
    from forecasting.backtesting.backtest import BacktestSpec as spec
    from forecasting.backtesting.backtest import run_backtest as run
    from forecasting.features import FeatureSpec
    from forecasting.features.build import FeatureSpec as feature_spec
    from forecasting.ingest import ingest
    from forecasting.ingest.pipeline import ingest as ingest_new

    assert (BacktestSpec, run_backtest, FeatureSpec, ingest) == (spec, run, feature_spec, ingest_new)


def test_a_model_pickled_under_the_old_feature_module_path_loads():
    """Registered model versions hold a FeatureSpec pickled as ``forecasting.features.FeatureSpec``."""
    import pickle

    from forecasting.features.build import FeatureSpec

    blob = pickle.dumps(FeatureSpec(lags=(1, 7)), protocol=2)  # protocol 2 names a class as "module\nname\n"
    assert b"forecasting.features.build\nFeatureSpec\n" in blob
    old = blob.replace(b"forecasting.features.build\n", b"forecasting.features\n")
    assert pickle.loads(old) == FeatureSpec(lags=(1, 7))


def test_the_new_packages_import_nothing_heavy():
    """Their __init__ files are docstrings (and lazy names): a submodule's import pays only for itself."""
    code = ("import sys\n"
            "import forecasting.ingest, forecasting.features, forecasting.backtesting, forecasting.analysis, "
            "forecasting.tuning\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy', 'psycopg', "
            "'great_expectations', 'lightgbm', 'sklearn') or m.startswith('forecasting.') and m.count('.') > 1))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _top_level_modules() -> set[str]:
    return {p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}


def _folders() -> set[str]:
    return {p.name + "/" for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}


def test_forecasting_keeps_few_top_level_modules():
    modules = _top_level_modules()
    shims = {old.rsplit(".", 1)[1] + ".py" for old in SHIMS}
    assert shims <= modules
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, sorted(modules)
    for folder in _folders():
        assert (PACKAGE / folder / "__init__.py").is_file(), f"{folder} is not a package"
        docstring = importlib.import_module("forecasting." + folder.rstrip("/")).__doc__
        assert docstring and docstring.strip(), f"forecasting/{folder}__init__.py says nothing about the folder"


def _readme_layout() -> tuple[set[str], set[str]]:
    """The folders and modules the README's Layout section lists under forecasting/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout\n", 1)[1]
    block = section.split("```\n", 2)[1]
    folders, modules = set(), set()
    for line in block.splitlines():
        match = re.match(r"^  (\S.*?)(?:\s{2,}|$)", line)  # two-space indent: an entry inside forecasting/
        if not match:
            continue
        for name in (n.strip() for n in match.group(1).split(",")):
            (folders if name.endswith("/") else modules).add(name)
    return folders, modules


def test_the_readme_layout_lists_the_package_tree():
    folders, modules = _readme_layout()
    assert folders == _folders()
    assert modules == _top_level_modules()
