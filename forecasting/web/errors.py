"""Errors of the web layer: each carries the HTTP status the API answers with."""

from __future__ import annotations

from forecasting.errors import ForecastingError

__all__ = ["InvalidRequest", "NotFound", "WebError"]


class WebError(ForecastingError):
    status_code = 500


class NotFound(WebError):
    """A series, pipeline, run or version that is not stored; the message names it."""

    status_code = 404


class InvalidRequest(WebError):
    """A parameter that cannot be honoured (an ambiguous series name, an unparseable instant)."""

    status_code = 400
