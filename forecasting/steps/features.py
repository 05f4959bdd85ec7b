"""Step ``features``: screen a partition's series and, when a global model is enabled, build its feature matrix
once.

Series that cannot be modelled are recorded in ``series_skips`` with their reason; the later steps of the
run leave them out. The matrix is what the global models will learn from: building it here checks that
the lags, rolling windows, calendar and exogenous features are computable and finite for every kept series
before any model spends time on them. A series whose features are not is left out of the global models only
(a skip per model); the local models still take it.
"""

from __future__ import annotations

import logging

import numpy as np
import psycopg

from forecasting.features.build import build_features
from forecasting.features.panel import SERIES
from forecasting.models.recursive import feature_spec
from forecasting.models.registry import model_class
from forecasting.steps.data import load_partition
from forecasting.steps.record import recorded
from forecasting.store.steps import Skip, skips_write

__all__ = ["features_partition"]

_log = logging.getLogger(__name__)


def features_partition(conn: psycopg.Connection, *, run_id: int, key: str) -> dict:
    return recorded(conn, run_id=run_id, step="features", key=key, work=lambda: _features(conn, run_id, key))


def _features(conn: psycopg.Connection, run_id: int, key: str) -> dict:
    data = load_partition(conn, run_id=run_id, key=key, step="features")
    skips = list(data.skips)
    n_rows = n_features = 0
    global_models = [m for m in data.config.models.enabled if model_class(m).kind == "global"]
    if global_models and not data.panel.empty:
        spec = feature_spec(data.config, has_exog=data.has_exog, panel=data.panel, freq=data.freq)
        matrix = build_features(data.panel, spec, freq=data.freq, exog=data.exog)
        values = matrix.select_dtypes("number").to_numpy(dtype="float64")
        infinite = np.isinf(values).any(axis=1)
        for series_id in sorted(set(data.panel.loc[infinite, SERIES])):
            skips += [Skip(int(series_id), "features overflow to infinity (values too large for rolling "
                                           "statistics)", model=model) for model in global_models]
        n_rows, n_features = matrix.shape
    skips_write(conn, run_id=run_id, step="features", partition_key=key, skips=skips)
    for skip in skips:
        _log.warning("series %s skipped%s: %s", data.targets[skip.series_id].name,
                     f" by {skip.model}" if skip.model else "", skip.reason)
    whole = {s.series_id for s in skips if s.model is None}
    return {"key": key, "n_series": len(data.targets), "n_modelled": len(data.targets) - len(whole),
            "n_skipped": len(whole), "rows": int(n_rows), "features": int(n_features)}
