"""How the pages and charts write numbers: large forecasts and prices in full, grouped, never in exponent form."""

import math
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from forecasting.web.charts import forecast_chart_svg
from forecasting.web.numbers import format_number


@pytest.mark.parametrize(("value", "text"), [
    (38543.04, "38,543"),
    (12345678.9, "12,345,679"),
    (-2500.25, "-2,500"),
    (123.456, "123.5"),
    (1.23456, "1.235"),
    (2.5, "2.5"),
    (1.0, "1"),
    (0.0123456, "0.01235"),
    (0.0, "0"),
    (1.234e-05, "1.234e-05"),
    (1e20, "1e+20"),
])
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(("value", "printed"), [
    (13058.27, "13058"), (371.6421, "371.6"), (216.84, "216.8"), (-0.51234, "-0.5123"), (0.0123456, "0.01235"),
    (0.0, "0"), (2.5e-7, "2.5e-07"), (3.2e16, "3.2e+16"), (float("nan"), "nan"),
])
def test_the_cli_summary_prints_forecasts_without_exponents_in_the_usual_range(value, printed):
    assert format_number(value, grouping=False) == printed


def test_without_grouping_for_lists_of_numbers() -> None:
    assert format_number(13058.27, grouping=False) == "13058"
    assert format_number(12345678.9, grouping=False) == "12345679"


def test_the_formatter_does_not_bring_in_the_web_app() -> None:
    # the CLI's run summary uses it: importing it must not import FastAPI
    code = ("import sys; from forecasting.web.numbers import format_number; import forecasting.run; "
            "print('fastapi' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_format_number_keeps_non_finite_values_readable() -> None:
    assert format_number(math.nan) == "nan"
    assert format_number(-math.inf) == "-inf"


def test_chart_ticks_and_tooltips_write_large_values_in_full() -> None:
    start = datetime(2024, 1, 1)
    history = [(start + timedelta(days=i), 38000.0 + 100 * i) for i in range(10)]
    forecast = [(start + timedelta(days=10 + i), 39000.0 + 50 * i) for i in range(3)]
    svg = forecast_chart_svg(history=history, forecast=forecast, bands={}, title="W1")
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', svg)
    assert ticks and not any("e+" in tick for tick in ticks)
    assert all(re.fullmatch(r"\d{2},\d{3}(\.\d)?", tick) for tick in ticks if ":" not in tick and "-" not in tick)
    assert "2024-01-11 00:00: 39,000</title>" in svg
