"""Moved to ``forecasting.backtesting.intervals``: the old path, kept for existing imports."""

from forecasting.backtesting.intervals import *  # noqa: F403
from forecasting.backtesting.intervals import __all__  # noqa: F401
