"""What the benchmarks share: a scratch database on a fresh embedded server, and a peak-memory sampler."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg

from forecasting.db.connection import _libpq_url
from forecasting.db.embedded import embedded_server_url, stop_embedded_server


class PeakRss:
    """Samples this process's resident memory in a thread; cheap enough not to disturb timings."""

    def __init__(self, interval: float = 0.01) -> None:
        self._proc = psutil.Process()
        self._interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A new database on ``url``'s server (default: a fresh embedded server), dropped afterwards."""
    tmp = None
    if url is None:
        tmp = Path(tempfile.mkdtemp(prefix="forecasting-bench-"))
        url = embedded_server_url(tmp)
    url = _libpq_url(url)
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path="/" + name))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        if tmp is not None:
            stop_embedded_server(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
