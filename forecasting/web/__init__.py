"""The read-only web app over the forecast store: JSON API, HTML pages with SVG charts (``create_app``)."""

from forecasting.web.app import create_app

__all__ = ["create_app"]
