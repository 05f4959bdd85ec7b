"""The trials of a hyperparameter search (grid or random) and how tuned parameters reach a config (pure)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from forecasting.config import PipelineConfig, TunedSettings
from forecasting.tuning.settings import SearchSettings

__all__ = ["Candidate", "candidates", "searches", "with_tuned"]


@dataclass(frozen=True)
class Candidate:
    params: dict[str, Any] = field(default_factory=dict)
    target_lags: list[int] | None = None


def searches(config: PipelineConfig) -> dict[str, SearchSettings]:
    """model name -> its search, for every tunable model (``Forecaster.tunable``) whose section has one."""
    from forecasting.models.registry import MODELS, model_class

    found = {name: model_class(name).settings(config).search_settings()
             for name in MODELS if model_class(name).tunable}
    return {name: search for name, search in found.items() if search is not None}


def candidates(search: SearchSettings, *, trials: int | None = None) -> list[Candidate]:
    """The combinations to try: all of the grid (its first ``trials`` with a limit), or ``trials`` distinct
    combinations drawn with the search's seed (all of them when the grid is smaller)."""
    dims: list[tuple[str, list]] = sorted(search.space.items())
    if search.target_lags:
        dims.append(("", search.target_lags))  # "" stands for the lag set: no estimator parameter has that name
    sizes = [len(values) for _, values in dims]
    total = math.prod(sizes)
    if search.method == "grid":
        indices = list(range(min(total, trials) if trials else total))
    else:
        # sample indices, not combinations: a large space is never materialised
        indices = random.Random(search.seed).sample(range(total), min(total, trials or search.trials))
    out = []
    for index in indices:
        chosen = {}
        for (name, values), size in zip(reversed(dims), reversed(sizes), strict=True):
            index, position = divmod(index, size)
            chosen[name] = values[position]
        lags = chosen.pop("", None)
        out.append(Candidate(params={k: chosen[k] for k in sorted(chosen)}, target_lags=lags))
    return out


def with_tuned(config: PipelineConfig, tuned: dict[str, TunedSettings | dict]) -> PipelineConfig:
    """``config`` with ``tuned`` as its ``models.tuned`` (the models' settings are applied over the config's)."""
    parsed = {name: TunedSettings.model_validate(value) for name, value in tuned.items()}
    return config.model_copy(update={"models": config.models.model_copy(update={"tuned": parsed})})
