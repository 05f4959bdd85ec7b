"""One error hierarchy for the whole package; the CLI and DAG layers translate these into exit codes."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataQualityError",
    "ForecastingError",
    "PermanentSourceError",
    "RateLimitError",
    "RetryableSourceError",
    "SourceError",
    "StoreError",
]


class ForecastingError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(ForecastingError):
    """The pipeline configuration is invalid; the message lists every problem found."""


class SourceError(ForecastingError):
    """A source could not deliver a series.

    ``retryable`` tells orchestration whether trying again later can help (rate limits, network faults)
    or not (unknown keyword or ticker, malformed answer).
    """

    retryable: bool = False

    def __init__(self, message: str, *, series: str | None = None, source: str | None = None) -> None:
        self.series = series
        self.source = source
        prefix = ""
        if series or source:
            prefix = f"[{source or '?'}:{series or '?'}] "
        super().__init__(prefix + message)


class RetryableSourceError(SourceError):
    """Transient failure: HTTP 429, 5xx, timeouts, connection errors. Retry with backoff."""

    retryable = True


class RateLimitError(RetryableSourceError):
    """The source said "too many requests" (HTTP 429): retry, but after a longer wait than other faults."""


class PermanentSourceError(SourceError):
    """Failure that retrying cannot fix: unknown keyword or ticker, empty answer, unreadable file."""

    retryable = False


class DataQualityError(ForecastingError):
    """A downloaded batch failed validation and was quarantined instead of stored."""

    def __init__(self, message: str, *, series: str, failed_expectations: list[dict]) -> None:
        self.series = series
        self.failed_expectations = failed_expectations
        super().__init__(message)


class StoreError(ForecastingError):
    """The store rejected a write (for example a frame that breaks the storage contract)."""
