"""Features, between the store and the models (pure): ``panel`` (the long panel format every model reads and
writes) and ``build`` (lag, rolling, exogenous, calendar and technical features over a panel).

The names of ``build`` are also reachable here, loaded on first use: model versions registered before this
package existed were pickled with ``forecasting.features.FeatureSpec`` and must still load.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from forecasting.features import build

    if name in build.__all__:
        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
