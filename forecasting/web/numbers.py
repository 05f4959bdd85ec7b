"""How a number is written for people: on the pages, the charts and the run summary the CLI prints. Four
significant digits, but every digit of the integer part, and no exponent for the values a forecast, a price or a
metric take (a level of GDP or a price loses its meaning as 1.306e+04). Standard library only: the CLI imports it
without the web app."""

from __future__ import annotations

import math

__all__ = ["format_number"]

SIGNIFICANT = 4
# outside this range of magnitudes a fixed-point figure is too long to read; the exponent form is clearer there
_FIXED_RANGE = (1e-4, 1e15)


def format_number(value: float, *, grouping: bool = True) -> str:
    """``value`` with ``SIGNIFICANT`` significant digits (more when the integer part has more: 1234567 stays
    whole), trailing zeros dropped, thousands separated by commas with ``grouping`` (not where numbers are listed
    with commas between them); NaN and infinities as Python writes them."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if not _FIXED_RANGE[0] <= magnitude < _FIXED_RANGE[1]:
        return f"{value:.{SIGNIFICANT}g}"
    decimals = max(0, SIGNIFICANT - 1 - math.floor(math.log10(magnitude)))
    text = f"{value:{',' if grouping else ''}.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
