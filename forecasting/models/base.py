"""The one interface every model implements: fit on a training panel, predict ``horizon`` steps past it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal, Self

import pandas as pd

if TYPE_CHECKING:
    from forecasting.config import PipelineConfig

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
    # 'global': one model learns from every series of a partition; 'local': one fit per series inside it
    kind: ClassVar[Literal["global", "local"]] = "local"
    # explained with SHAP after prediction (tree models exposing ``last_X_``)
    explainable: ClassVar[bool] = False

    def __init__(self) -> None:
        self.fallbacks: dict[object, str] = {}

    @classmethod
    def from_config(cls, config: PipelineConfig, *, has_exog: bool) -> Self:
        """The model as the pipeline config sets it up."""
        return cls()

    @classmethod
    def settings(cls, config: PipelineConfig, *, has_exog: bool) -> dict:
        """The config settings this model depends on once fitted (recorded, and part of its fingerprint)."""
        return {}

    @abstractmethod
    def fit(self, panel: pd.DataFrame, *, freq: str, exog: pd.DataFrame | None = None) -> Self: ...

    @abstractmethod
    def predict(self, horizon: int, *, exog: pd.DataFrame | None = None) -> pd.DataFrame: ...
