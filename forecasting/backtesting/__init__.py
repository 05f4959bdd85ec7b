"""Backtesting and scoring, after the models (pure): ``folds`` (rolling-origin windows), ``backtest`` (every model on
the same windows), ``metrics`` (sMAPE, MASE, OWA), ``evaluation`` (scores and champion choice), ``intervals``
(conformal prediction intervals from backtest errors) and ``m4`` (the M4 competition files).
"""
