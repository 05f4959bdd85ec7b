"""Ingest, the first stage after the sources: download each configured series, validate it (Great Expectations, per
series and per batch) and hand it to the store's version-aware upsert.

``pipeline`` (the ingest loop), ``validation`` and ``shard_validation`` (the quality gate), ``series_groups``
(config blocks that stand for many series), ``settings`` (the config's ``ingest`` section). Nothing is imported
here: the config and the Airflow DAG file load ``settings`` and ``validation`` without the rest.
"""
