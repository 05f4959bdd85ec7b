"""Registry of series sources by name. Sources are imported lazily: yfinance and pytrends are slow to import."""

from __future__ import annotations

import importlib

from forecasting.errors import ConfigError
from forecasting.sources.base import FetchResult, SeriesSource, SourceParams, ValueBounds

__all__ = ["FetchResult", "SeriesSource", "SourceParams", "ValueBounds", "get_source", "source_names"]

_REGISTRY: dict[str, str] = {
    "google_trends": "forecasting.sources.google_trends:GoogleTrendsSource",
    "yahoo_finance": "forecasting.sources.yahoo_finance:YahooFinanceSource",
    "csv": "forecasting.sources.csv_file:CsvSource",
    "sample": "forecasting.sources.sample:SampleSource",
}


def source_names() -> list[str]:
    return sorted(_REGISTRY)


def get_source(name: str) -> SeriesSource:
    """Instantiate the source registered under ``name``."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; known sources: {', '.join(source_names())}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)()
