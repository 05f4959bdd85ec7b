"""Moved to ``forecasting.features.panel``: the old path, kept for existing imports."""

from forecasting.features.panel import *  # noqa: F403
from forecasting.features.panel import __all__  # noqa: F401
