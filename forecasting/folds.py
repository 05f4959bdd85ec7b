"""Moved to ``forecasting.backtesting.folds``: the old path, kept for existing imports."""

from forecasting.backtesting.folds import *  # noqa: F403
from forecasting.backtesting.folds import __all__  # noqa: F401
