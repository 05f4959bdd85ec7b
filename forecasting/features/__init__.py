"""Features, between the store and the models (pure): ``panel`` (the long panel format every model reads and
writes) and ``build`` (lag, rolling, exogenous, calendar and technical features over a panel).

``forecasting.features`` was one module before this folder: its names still resolve here, loaded on first use
(model versions registered before were pickled with ``forecasting.features.FeatureSpec`` and must still load).
Nothing is imported until then.
"""

from __future__ import annotations

from typing import Any

# build.__all__ (tests/test_layout.py checks they agree)
_BUILD_NAMES = frozenset({"ROLLING_STATS", "TECHNICAL_FEATURES", "FeatureSpec", "build_features", "feature_names",
                          "tail_for_prediction", "tail_length"})


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from forecasting.features import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
