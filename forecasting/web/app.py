"""The web app: a read-only JSON API (``/api/v1``), HTML pages and the OpenAPI docs (``/docs``), all over the views.

``create_app`` serves ``forecasting serve`` and the Airflow plugin (mounted under ``/forecasts``, where the plugin
adds Airflow's login as a dependency of every route).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecasting.db import Database
from forecasting.db.views import READER_ROLE
from forecasting.web import api, pages
from forecasting.web.errors import InvalidParameter, WebError
from forecasting.web.readonly import ReadOnlyDatabase

__all__ = ["create_app"]

_log = logging.getLogger(__name__)


def create_app(database: Database | str | Callable[[], Database], *, reader_role: str | None = READER_ROLE,
               dependencies: Sequence[Depends] = ()) -> FastAPI:
    """The app over ``database`` (a Database, a URL, or a function returning one, called on the first request).

    ``reader_role``: the role every connection switches to when the login may (None: never switch).
    ``dependencies``: run before every route (the Airflow plugin passes Airflow's authentication).
    """
    app = FastAPI(title="forecasting", version="1",
                  description="Read-only forecasts, history, backtests and runs of the forecasting pipelines.",
                  dependencies=[*dependencies, Depends(_refuse_nul_bytes)])  # after the login: 401 comes first
    app.state.reader = ReadOnlyDatabase(database, role=reader_role)
    app.include_router(api.router)
    app.include_router(pages.router)

    def _error(request: Request, status: int, message: str, detail: object = None):
        if request.url.path.startswith(request.scope.get("root_path", "") + "/api/"):
            body = {"error": {"status": status, "message": message}}
            if detail is not None:
                body["error"]["detail"] = detail
            return JSONResponse(body, status_code=status)
        return HTMLResponse(pages.error_page(request, status, message), status_code=status)

    @app.exception_handler(WebError)
    async def _web_error(request: Request, exc: WebError):
        # a parameter's 422 has the shape of FastAPI's own (the detail lists the problem)
        detail = [str(exc)] if isinstance(exc, InvalidParameter) else None
        return _error(request, exc.status_code, str(exc), detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(request, 422, "; ".join(problems), detail=problems)

    return app


def _refuse_nul_bytes(request: Request) -> None:
    """PostgreSQL text cannot hold a NUL byte, so no stored name has one, and a query given one fails (a 500):
    such a parameter is refused before any query, with a 422 naming it."""
    for where, items in (("path", request.path_params.items()), ("query", request.query_params.multi_items())):
        for key, value in items:
            if "\x00" in key:
                raise InvalidParameter(where, "a parameter name contains a NUL byte")
            if isinstance(value, str) and "\x00" in value:
                raise InvalidParameter(f"{where}.{key}", "contains a NUL byte, which no name or value can hold")
