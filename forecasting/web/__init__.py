"""The read-only web app over the forecast store: JSON API, HTML pages with SVG charts (``create_app``).

``create_app`` is imported on first use, so a light module of this package (``numbers``, which the CLI's run
summary shares) does not bring in FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forecasting.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from forecasting.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
