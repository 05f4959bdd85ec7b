"""HTML pages: pipelines and series (``/``), one series (``/series/{name}``) and runs (``/runs``).

They read through the same ``queries`` as the API. Links are built from the mount point (``root_path``), so the
pages work standalone and under Airflow's ``/forecasts``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from forecasting.web import queries
from forecasting.web.api import Conn, Source
from forecasting.web.charts import forecast_chart_svg
from forecasting.web.errors import NotFound
from forecasting.web.numbers import format_number

__all__ = ["error_page", "router"]

_RECENT_POINTS = 40  # actual points in the recent-past chart (more when the horizon is long)

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)


def _age(value: datetime | None) -> str:
    """How long ago, in words a person reads at a glance ("3 h ago")."""
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def _num(value: object) -> str:
    return "" if value is None else format_number(value) if isinstance(value, float) else str(value)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.2f}%"


# why a champion is not always the model ranked first for its series (champions.strategy, backtest.champion_strategy)
_CHOSEN_BY = {
    "per_series": "the series' own lowest backtest score",
    "robust": "the series' own best model only where it beat the partition's pooled best clearly in every backtest "
              "window, else that pooled best",
    "pooled": "one model for every series of the partition: the best backtest score over them all (per-series "
              "choices scored no better on held-out windows)",
    "untested": "the series is too short for a backtest window: the partition's best model among those that can "
                "fit it",
}

templates.env.filters["age"] = _age
templates.env.globals["chosen_by"] = _CHOSEN_BY
templates.env.filters["num"] = _num
templates.env.filters["pct"] = _pct


def _render(request: Request, template: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"base": request.scope.get("root_path", ""), **context})


def error_page(request: Request, status: int, message: str) -> str:
    return templates.get_template("error.html").render(base=request.scope.get("root_path", ""), status=status,
                                                       message=message)


@router.get("/", response_class=HTMLResponse)
def index(request: Request, conn: Conn) -> HTMLResponse:
    pipelines = queries.pipelines_list(conn)
    series = queries.series_targets_list(conn)
    by_pipeline = {p["pipeline"]: [s for s in series if s["pipeline"] == p["pipeline"]] for p in pipelines}
    return _render(request, "index.html", pipelines=pipelines, series=by_pipeline)


@router.get("/series/{name}", response_class=HTMLResponse)
def series_page(request: Request, conn: Conn, name: str, source: Source = None,
                run: Annotated[int | None, Query()] = None,
                threshold: Annotated[float, Query(gt=0.5, lt=1)] = 0.6) -> HTMLResponse:
    history = queries.series_history(conn, name=name, source=source)
    key = {"name": history["series"], "source": history["source"]}
    try:
        forecast = queries.forecast_read(conn, **key, run=run)
    except NotFound:
        if run is not None:
            raise
        forecast = None  # stored but never forecast: the page still shows its data
    try:
        board = queries.backtest_leaderboard(conn, **key)
    except NotFound:
        board = None
    price = None
    if forecast is not None and history["source"] == queries.PRICE_SOURCE:
        price = queries.price_signal(conn, **key, threshold=threshold)
    features = queries.top_features(conn, **key, run_id=forecast["run_id"],
                                    model_version_id=forecast["model_version_id"]) if forecast else []
    points = forecast["points"] if forecast else []
    bands = {int(level): [(p["ts"], p["intervals"][str(level)]["lower"], p["intervals"][str(level)]["upper"])
                          for p in points if str(level) in p["intervals"]]
             for level in (forecast["levels"] if forecast else [])}
    actual = [(p["ts"], p["value"]) for p in history["points"]]
    predicted = [(p["ts"], p["yhat"]) for p in points]
    chart = forecast_chart_svg(history=actual, forecast=predicted, bands=bands,
                               title=f"{history['series']}: actual vs forecast, whole history")
    # the whole history of a long series leaves the forecast a few pixels wide: the recent past, next to it
    recent = forecast_chart_svg(history=actual[-max(_RECENT_POINTS, 4 * len(points)):], forecast=predicted,
                                bands=bands, title=f"{history['series']}: the recent past and the forecast",
                                css_class="forecast-chart-recent")
    return _render(request, "series.html", history=history, forecast=forecast, board=board, features=features,
                   price=price,
                   versions=queries.series_versions(conn, **key),
                   chart=Markup(chart), recent_chart=Markup(recent))  # built and escaped by charts.py


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, conn: Conn, pipeline: str | None = None) -> HTMLResponse:
    return _render(request, "runs.html", pipeline=pipeline, **queries.runs_list(conn, pipeline=pipeline, limit=100))
