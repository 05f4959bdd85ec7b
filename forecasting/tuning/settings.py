"""The ``search`` section of a model's settings (``models.lightgbm.search``): what ``forecasting tune`` tries,
and the parameters a finished search chose (``models.tuned``, filled in by the planner, not by hand)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

__all__ = ["SearchSettings", "TunedSettings", "search_problems"]

PositiveInt = Annotated[StrictInt, Field(gt=0)]


class SearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["random", "grid"] = "random"
    trials: PositiveInt = 20  # random search: how many distinct combinations are tried
    seed: StrictInt = 0
    # estimator parameter -> the values tried for it
    space: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    # candidate lists of target lags; empty: the config's preprocessing.target_lags in every trial
    target_lags: list[Annotated[list[PositiveInt], Field(min_length=1)]] = Field(default_factory=list)
    # None: backtest.champion_metric, so the search optimises what champion selection judges by
    metric: Literal["mase", "smape", "mae", "rmse"] | None = None

    @field_validator("space")
    @classmethod
    def _distinct_values(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in value.items():
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"the values of {name!r} repeat")
        return value

    @field_validator("target_lags")
    @classmethod
    def _distinct_lags(cls, value: list[list[int]]) -> list[list[int]]:
        for lags in value:
            if len(set(lags)) != len(lags):
                raise ValueError(f"lags must not repeat within a candidate: {lags}")
        return [sorted(lags) for lags in value]


class TunedSettings(BaseModel):
    """The search's choice for one model: applied over the config's own settings of that model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[str, Any] = Field(default_factory=dict)
    target_lags: list[PositiveInt] | None = None
    tune_run_id: StrictInt | None = None  # the pipeline run of command 'tune' that chose them
    trial: StrictInt | None = None


def search_problems(raw: Any, known_params: Iterable[str], *, estimator: str) -> list[str]:
    """Every problem of a raw ``search`` mapping, each naming its key (``search.space.foo: ...``)."""
    try:
        search = SearchSettings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            where = ".".join(["search", *(str(p) for p in item["loc"])])
            message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        return problems
    known = set(known_params)
    problems = [f"search.space.{name}: {estimator} does not accept this parameter" for name in search.space
                if name not in known]
    if not search.space and not search.target_lags:
        problems.append("search: give a 'space' of parameter values, candidate 'target_lags', or both")
    return problems
