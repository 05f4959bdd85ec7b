"""JSON for jsonb columns that never fails on numbers: NaN and ±inf become null (PostgreSQL's json rejects
them), numpy scalars become Python numbers."""

from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["json_dumps", "json_safe"]


def json_safe(value: object) -> object:
    """``value`` with every non-finite float replaced by None, recursively; numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_dumps(value: object) -> str:
    return json.dumps(json_safe(value), default=str, allow_nan=False)
