"""The one interface every model implements: fit on a training panel, predict ``horizon`` steps past it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self

import pandas as pd

__all__ = ["Forecaster"]


class Forecaster(ABC):
    """A forecasting model over a panel of series (``forecasting.panel`` format).

    ``fit`` receives the training panel (columns series, ts, y; sorted; regular at ``freq``) and, when the
    configuration has feature series, ``exog``: a panel of those series (series = feature name). ``predict``
    returns, for every series seen in ``fit``, the ``horizon`` steps after its last training timestamp:
    columns series, ts, step (1..horizon), yhat.

    A model that cannot fit a series must not raise: it falls back (usually to the naive forecast) and
    records the series and the reason in ``fallbacks``, so one bad series never stops the others.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self.fallbacks: dict[str, str] = {}

    @abstractmethod
    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self: ...

    @abstractmethod
    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame: ...
