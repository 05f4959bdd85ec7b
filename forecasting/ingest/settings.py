"""Ingest settings of a pipeline config, in a module of their own: the Airflow DAG file reads them at parse
time, where importing the full config (pandas, sources) would be too slow. pydantic is loaded by Airflow."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

__all__ = ["IngestSettings"]


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # in-process retries of the CLI; Airflow's retries of a shard task
    retries: Annotated[StrictInt, Field(ge=0)] = 2
    # series per mapped Airflow task: Airflow slows down past a few hundred mapped tasks (1,024 at most)
    shard_size: Annotated[StrictInt, Field(ge=1)] = 25
    # series downloaded, then validated in one Great Expectations run and stored in a few transactions; an
    # ingest holds one batch of downloads in memory at a time
    batch_size: Annotated[StrictInt, Field(ge=1)] = 500
    # first retry delay, doubled each time
    retry_backoff_seconds: float = Field(default=5.0, ge=0)
    # after an HTTP 429 Airflow waits this long before retrying the shard (Google Trends throttles by IP)
    rate_limit_backoff_seconds: float = Field(default=900.0, ge=0)
