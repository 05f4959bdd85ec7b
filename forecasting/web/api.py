"""The JSON API under ``/api/v1``: read-only, every answer from the SQL views (``queries.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Query, Request

from forecasting.web import queries

__all__ = ["connection", "router"]


def connection(request: Request) -> Iterator[psycopg.Connection]:
    """One read-only connection per request (see ``readonly.py``)."""
    with request.app.state.reader.connect() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(connection)]
Source = Annotated[str | None, Query(description="the series' source, when two sources use one name")]

router = APIRouter(prefix="/api/v1", tags=["forecasts"])


@router.get("/pipelines", summary="Every pipeline with its series counts, interval levels and newest runs")
def pipelines(conn: Conn) -> dict:
    return {"pipelines": queries.pipelines_list(conn)}


@router.get("/series", summary="The target series of a pipeline with freshness, frequency and version count")
def series_list(conn: Conn, pipeline: Annotated[str | None, Query(description="pipeline (config) name")] = None
                ) -> dict:
    return {"pipeline": pipeline, "series": queries.series_targets_list(conn, pipeline=pipeline)}


@router.get("/series/{name}", summary="The stored history of a series: current, a version, or as of an instant")
def series_history(conn: Conn, name: str, source: Source = None,
                   version: Annotated[int | None, Query(ge=1, description="a version number")] = None,
                   as_of: Annotated[str | None, Query(description="ISO 8601 instant: the data as known then")] = None
                   ) -> dict:
    history = queries.series_history(conn, name=name, source=source, version=version, as_of=as_of)
    history["versions"] = queries.series_versions(conn, name=history["series"], source=history["source"])
    return history


@router.get("/series/{name}/forecast",
            summary="The champion forecast with bounds at every interval level, its model, model version and run")
def series_forecast(conn: Conn, name: str, source: Source = None,
                    run: Annotated[int | None, Query(description="the forecast another run published")] = None
                    ) -> dict:
    forecast = queries.forecast_read(conn, name=name, source=source, run=run)
    forecast["top_features"] = queries.top_features(
        conn, name=forecast["series"], source=forecast["source"], run_id=forecast["run_id"],
        model_version_id=forecast["model_version_id"])
    return forecast


@router.get("/series/{name}/backtest", summary="The leaderboard of models for the series, by metric and step")
def series_backtest(conn: Conn, name: str, source: Source = None,
                    run: Annotated[int | None, Query(description="a run (default: the newest backtest)")] = None,
                    mode: Annotated[str, Query(pattern="^(latest|as_known)$")] = "latest",
                    metric: Annotated[str | None, Query(description="rank by (default: the champion metric)")] = None
                    ) -> dict:
    return queries.backtest_leaderboard(conn, name=name, source=source, run=run, mode=mode, metric=metric)


@router.get("/series/{name}/signal",
            summary="Price series only: expected return, P(up), an up/down/hold signal and its backtest record "
                    "(analysis, not advice)")
def series_signal(conn: Conn, name: str, source: Source = None,
                  threshold: Annotated[float, Query(gt=0.5, lt=1, description="P(up) needed for 'up'")] = 0.6
                  ) -> dict:
    return queries.price_signal(conn, name=name, source=source, threshold=threshold)


@router.get("/runs", summary="The newest model, ingest and Airflow runs")
def runs(conn: Conn, pipeline: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    return queries.runs_list(conn, pipeline=pipeline, limit=limit)
