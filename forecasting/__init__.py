"""Batch forecasting pipeline: versioned time-series storage in PostgreSQL, orchestrated by Airflow."""

__all__ = ["__version__"]

__version__ = "0.1.0"
