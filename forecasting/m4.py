"""Moved to ``forecasting.backtesting.m4``: the old path, kept for existing imports."""

from forecasting.backtesting.m4 import *  # noqa: F403
from forecasting.backtesting.m4 import __all__  # noqa: F401
