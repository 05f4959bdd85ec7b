"""Errors of the web layer: each carries the HTTP status the API answers with."""

from __future__ import annotations

from forecasting.errors import ForecastingError

__all__ = ["InvalidParameter", "InvalidRequest", "NotFound", "WebError"]


class WebError(ForecastingError):
    status_code = 500


class NotFound(WebError):
    """A series, pipeline, run or version that is not stored; the message names it."""

    status_code = 404


class InvalidRequest(WebError):
    """A parameter that cannot be honoured (an ambiguous series name, an unparseable instant)."""

    status_code = 400


class InvalidParameter(InvalidRequest):
    """A path or query parameter whose value no answer can be made from (not a timestamp, a NUL byte): 422, as
    FastAPI answers a value of the wrong type, with the message starting where it is (``query.as_of: ...``)."""

    status_code = 422

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
