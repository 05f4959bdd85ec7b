"""Ingest, the first stage after the sources: download each configured series, validate it (Great Expectations, per
series and per batch) and hand it to the store's version-aware upsert.

``pipeline`` (the ingest loop), ``validation`` and ``shard_validation`` (the quality gate), ``series_groups``
(config blocks that stand for many series), ``settings`` (the config's ``ingest`` section). Nothing is imported
here: the config and the Airflow DAG file load ``settings`` and ``validation`` without the rest.

``forecasting.ingest`` was one module before this folder: ``from forecasting.ingest import ingest`` still works,
loading ``pipeline`` on first use.
"""

from __future__ import annotations

from typing import Any

# pipeline.__all__ (tests/test_layout.py checks they agree)
_PIPELINE_NAMES = frozenset({"IngestReport", "ingest", "ingest_batch"})


def __getattr__(name: str) -> Any:
    if name in _PIPELINE_NAMES:
        from forecasting.ingest import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
