"""Forecasting models: one ``Forecaster`` interface (``base``), the registry of models by name (``registry``)."""
