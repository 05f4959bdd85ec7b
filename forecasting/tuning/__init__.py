"""``forecasting tune``: hyperparameter search scored by backtest. ``tune`` (the command), ``search`` (the trials and
how tuned parameters reach a config) and ``settings`` (the config's ``search`` section, which ``forecasting.config``
loads: nothing is imported here).
"""
