"""Server-rendered SVG charts (pure): no JavaScript, no chart library, nothing fetched by the browser.

The forecast chart draws one ``circle.actual-point`` per stored point, one ``circle.forecast-point`` per forecast
step and one ``path.band`` per interval level (``data-level``), so a test can count what was drawn against the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from forecasting.web.numbers import format_number

__all__ = ["forecast_chart_svg"]

_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 64, 40, 28, 32
_BAND_OPACITY = {0: 0.18, 1: 0.30, 2: 0.42, 3: 0.54}  # widest (highest level) band palest, by rank


class _Scale:
    """Maps timestamps and values to pixels; a degenerate range (one point, a flat series) gets padding."""

    def __init__(self, times: Sequence[datetime], values: Sequence[float], width: int, height: int):
        t0, t1 = min(times).timestamp(), max(times).timestamp()
        v0, v1 = min(values), max(values)
        if t1 == t0:
            t0, t1 = t0 - 1, t1 + 1
        pad = (v1 - v0) * 0.05 or abs(v1) * 0.05 or 1.0
        self.t0, self.t1, self.v0, self.v1 = t0, t1, v0 - pad, v1 + pad
        self.left, self.right = _MARGIN_LEFT, width - _MARGIN_RIGHT
        self.top, self.bottom = _MARGIN_TOP, height - _MARGIN_BOTTOM

    def x(self, ts: datetime) -> float:
        return self.left + (ts.timestamp() - self.t0) / (self.t1 - self.t0) * (self.right - self.left)

    def y(self, value: float) -> float:
        return self.bottom - (value - self.v0) / (self.v1 - self.v0) * (self.bottom - self.top)


def _axes(scale: _Scale, n_ticks: int = 5) -> list[str]:
    parts = [f'<line class="axis" x1="{scale.left}" y1="{scale.bottom}" x2="{scale.right}" y2="{scale.bottom}"/>',
             f'<line class="axis" x1="{scale.left}" y1="{scale.top}" x2="{scale.left}" y2="{scale.bottom}"/>']
    for i in range(n_ticks + 1):
        value = scale.v0 + (scale.v1 - scale.v0) * i / n_ticks
        y = scale.y(value)
        label = format_number(value)
        parts.append(f'<line class="grid" x1="{scale.left}" y1="{y:.1f}" x2="{scale.right}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{scale.left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for i in range(n_ticks + 1):
        stamp = scale.t0 + (scale.t1 - scale.t0) * i / n_ticks
        x = scale.left + (scale.right - scale.left) * i / n_ticks
        label = datetime.fromtimestamp(stamp).strftime("%Y-%m-%d")
        parts.append(f'<text class="tick" x="{x:.1f}" y="{scale.bottom + 18}" text-anchor="middle">{label}</text>')
    return parts


def forecast_chart_svg(
    *,
    history: Sequence[tuple[datetime, float]],
    forecast: Sequence[tuple[datetime, float]],
    bands: Mapping[int, Sequence[tuple[datetime, float, float]]],
    title: str,
    width: int = 960,
    height: int = 360,
    css_class: str = "forecast-chart",
) -> str:
    """Actuals (line and points), the forecast (line and points) and one band per interval level."""
    times = [t for t, _ in history] + [t for t, _ in forecast]
    values = [v for _, v in history] + [v for _, v in forecast]
    for rows in bands.values():
        times += [t for t, _, _ in rows]
        values += [v for _, lo, hi in rows for v in (lo, hi)]
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
            "<style>.axis{stroke:#555}.grid{stroke:#ddd}.tick{font:11px sans-serif;fill:#444}"
            ".actual-line{fill:none;stroke:#1f4e79;stroke-width:1.2}.actual-point{fill:#1f4e79}"
            ".forecast-line{fill:none;stroke:#c0504d;stroke-width:1.6}.forecast-point{fill:#c0504d}"
            ".band{fill:#c0504d;stroke:none}.legend{font:12px sans-serif;fill:#222}</style>"
            f'<text class="legend" x="{_MARGIN_LEFT}" y="16">{escape(title)}</text>')
    if not times:
        return head + f'<text class="legend" x="{width / 2}" y="{height / 2}">no data</text></svg>'
    scale = _Scale(times, values, width, height)
    parts = [head, *_axes(scale)]
    for rank, level in enumerate(sorted(bands, reverse=True)):  # widest first, so narrower bands sit on top
        rows = sorted(bands[level])
        if not rows:
            continue
        upper = " L ".join(f"{scale.x(t):.1f} {scale.y(hi):.1f}" for t, _, hi in rows)
        lower = " L ".join(f"{scale.x(t):.1f} {scale.y(lo):.1f}" for t, lo, _ in reversed(rows))
        opacity = _BAND_OPACITY.get(rank, 0.6)
        parts.append(f'<path class="band" data-level="{level}" fill-opacity="{opacity}" d="M {upper} L {lower} Z">'
                     f"<title>{level}% interval</title></path>")
    for kind, points in (("actual", history), ("forecast", forecast)):
        if not points:
            continue
        line = " ".join(f"{scale.x(t):.1f},{scale.y(v):.1f}" for t, v in points)
        parts.append(f'<polyline class="{kind}-line" points="{line}"/>')
        radius = 1.6 if kind == "actual" else 3
        parts += [f'<circle class="{kind}-point" cx="{scale.x(t):.1f}" cy="{scale.y(v):.1f}" r="{radius}">'
                  f"<title>{t:%Y-%m-%d %H:%M}: {format_number(v)}</title></circle>" for t, v in points]
    levels = ", ".join(f"{level}%" for level in sorted(bands))
    parts.append(f'<text class="legend" x="{width - _MARGIN_RIGHT}" y="16" text-anchor="end">'
                 f"actual (blue), forecast (red){', intervals ' + levels if levels else ''}</text></svg>")
    return "".join(parts)
