"""Moved to ``forecasting.backtesting.backtest``: the old path, kept for existing imports."""

from forecasting.backtesting.backtest import *  # noqa: F403
from forecasting.backtesting.backtest import __all__  # noqa: F401
