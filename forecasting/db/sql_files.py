"""A SQL file the schema is built from: its text, and the checksum recorded when it is applied."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SqlFile"]


@dataclass(frozen=True)
class SqlFile:
    """A numbered SQL file whose text is applied and whose checksum is recorded."""

    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()
