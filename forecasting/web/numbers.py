"""How the pages and charts write a number: four significant digits, grouped thousands, no exponent for the
values a forecast, a price or a metric take (a forecast of 38,543 reads as "38,543", not "3.854e+04")."""

from __future__ import annotations

import math

__all__ = ["format_number"]

SIGNIFICANT = 4
# outside this range of magnitudes a fixed-point figure is too long to read; the exponent form is clearer there
_FIXED_RANGE = (1e-4, 1e15)


def format_number(value: float) -> str:
    """``value`` with ``SIGNIFICANT`` significant digits (more when the integer part has more: 1234567 stays whole),
    thousands grouped; trailing zeros dropped; NaN and infinities as Python writes them."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if not _FIXED_RANGE[0] <= magnitude < _FIXED_RANGE[1]:
        return f"{value:.{SIGNIFICANT}g}"
    integer_digits = math.floor(math.log10(magnitude)) + 1
    decimals = max(0, SIGNIFICANT - integer_digits)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
