"""Moved to ``forecasting.backtesting.evaluation``: the old path, kept for existing imports."""

from forecasting.backtesting.evaluation import *  # noqa: F403
from forecasting.backtesting.evaluation import __all__  # noqa: F401
