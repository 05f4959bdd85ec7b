"""Run as root, the embedded server never opens a private folder it did not create to everyone."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from forecasting.db.embedded import ROOT_DATA_DIR, default_data_dir, embedded_server_url
from forecasting.errors import StoreError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the permission change happens only when run as root")


def test_a_data_folder_inside_a_private_folder_is_refused_and_the_folder_stays_private():
    private = Path(tempfile.mkdtemp(prefix="forecasting-private-"))  # 0700, like /root
    try:
        with pytest.raises(StoreError, match=rf"open the private folder {private} \(mode 700\) to everyone"):
            embedded_server_url(private / "inner" / "data")
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert not (private / "inner").exists()  # nothing was created either
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_roots_default_data_folder_is_outside_its_private_home(monkeypatch):
    monkeypatch.delenv("FORECASTING_DATA_DIR", raising=False)
    assert default_data_dir() == ROOT_DATA_DIR
