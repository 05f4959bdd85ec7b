"""JSON for jsonb columns that never fails on numbers: NaN and ±inf become null (PostgreSQL's json rejects
them), numpy scalars become Python numbers."""

from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["json_dumps", "json_safe"]


def json_safe(value: object, *, as_text: bool = False) -> object:
    """``value`` with every non-finite float replaced by None (or, ``as_text``, by its text: "inf", "nan",
    where it is evidence, as in a quarantined batch), recursively; numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, as_text=as_text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, as_text=as_text) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value) if as_text else None
    return value


def json_dumps(value: object, *, as_text: bool = False) -> str:
    return json.dumps(json_safe(value, as_text=as_text), default=str, allow_nan=False)
