"""Analysis of model output (pure apart from the model it explains): ``explain`` (SHAP contributions of tree-model
forecasts, stored by the predict step) and ``signals`` (price-series statistics from a forecast and its backtest,
computed by the web app).
"""
