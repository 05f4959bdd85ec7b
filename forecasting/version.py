"""The code version recorded with every run and model version (and part of model fingerprints)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from forecasting import __version__

__all__ = ["code_version"]


@functools.cache
def code_version() -> str:
    """Package version plus the git commit of the source checkout, when there is one."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}"
