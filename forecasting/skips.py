"""A series a step could not model, and why: made by the pure screening code, stored by ``forecasting.store``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Skip"]


@dataclass(frozen=True)
class Skip:
    """A series (or one model of it, when ``model`` is set) that a step could not model, and why."""

    series_id: int
    reason: str
    model: str | None = None
