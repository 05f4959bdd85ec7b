"""Config blocks that stand for many series: a long CSV file with a series-id column becomes one series per id.

Ingest expands a block by reading its file; modeling by reading the store (the members that ingest stored),
so a planned run never depends on a file or URL being reachable, and sees exactly what was stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import psycopg
from pydantic import ValidationError

from forecasting.config import PipelineConfig, SeriesConfig
from forecasting.errors import ConfigError, ForecastingError, SourceError
from forecasting.sources import get_source
from forecasting.store.selectors import series_params_of_config

__all__ = ["GroupFailure", "expand_groups", "member_name", "values_from_source", "values_from_store"]

_log = logging.getLogger(__name__)

_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.\-]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

ValuesOf = Callable[[SeriesConfig], list[str]]


class GroupFailure(ForecastingError):
    """A group's members could not be listed (its file is missing or unreadable)."""

    def __init__(self, spec: SeriesConfig, error: SourceError) -> None:
        super().__init__(f"series block {spec.name!r}: cannot list its series: {error}")
        self.spec = spec
        self.error = error


def member_name(spec: SeriesConfig, value: str) -> str:
    """``series_prefix`` + the value, with characters a series name cannot hold replaced by ``_``."""
    prefix = spec.params.get("series_prefix") or ""
    return prefix + _NOT_IN_NAMES.sub("_", value)


def values_from_source(spec: SeriesConfig) -> list[str]:
    values = get_source(spec.source).group_values(spec.source_params(), series=spec.name)
    return values or []


def values_from_store(conn: psycopg.Connection, config_name: str) -> ValuesOf:
    """The member values of each block as last stored for this config."""
    stored_by_source: dict[str, list[tuple[str, dict]]] = {}

    def values_of(spec: SeriesConfig) -> list[str]:
        if spec.source not in stored_by_source:
            stored_by_source[spec.source] = series_params_of_config(conn, config_name=config_name, source=spec.source)
        source = get_source(spec.source)
        values = []
        for name, params in stored_by_source[spec.source]:
            value = params.get("filter_value")
            if value is None or member_name(spec, str(value)) != name:
                continue
            member = source.params_model.model_validate(source.member_params(spec.params, str(value)))
            if member.model_dump(mode="json") == params:
                values.append(str(value))
        return sorted(values)

    return values_of


def _is_group(spec: SeriesConfig) -> bool:
    return spec.source_params().is_group


def expand_groups(config: PipelineConfig, values_of: ValuesOf, *,
                  on_failure: Callable[[GroupFailure], None] | None = None) -> PipelineConfig:
    """The config with each group block replaced by one block per member, in the block's place.

    Raises:
        ConfigError: a member's name is not a valid series name, or two series get one name.
        GroupFailure: a group's members cannot be listed, unless ``on_failure`` takes it (the block is then
            left out).
    """
    if not any(_is_group(spec) for spec in config.series):
        return config
    expanded: list[dict] = []
    problems: list[str] = []
    failures: list[GroupFailure] = []
    for spec in config.series:
        if not _is_group(spec):
            expanded.append(spec.model_dump(mode="json"))
            continue
        try:
            values = values_of(spec)
        except SourceError as exc:
            failure = GroupFailure(spec, exc)
            if on_failure is None:
                raise failure from exc
            failures.append(failure)
            continue
        problems += _member_problems(spec, values)
        source = get_source(spec.source)
        for value in values:
            member = spec.model_copy(update={"name": member_name(spec, value),
                                             "params": source.member_params(spec.params, value)})
            expanded.append(member.model_dump(mode="json"))
        _log.info("series block %r: %d series from %s column %r", spec.name, len(values),
                  spec.params.get("path", spec.source), spec.params["series_column"])
    if problems:
        raise ConfigError(f"config {config.name!r}: " + "; ".join(problems))
    try:
        expanded_config = PipelineConfig.model_validate({**config.model_dump(mode="json"), "series": expanded})
    except ValidationError as exc:
        if failures:  # nothing (or no target) is left without the failed blocks: their failure is the error
            raise failures[0] from failures[0].error
        messages = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise ConfigError(f"config {config.name!r}, after expanding its series_column blocks: {messages}") from None
    for failure in failures:
        on_failure(failure)
    return expanded_config


def _member_problems(spec: SeriesConfig, values: list[str]) -> list[str]:
    problems = []
    named: dict[str, str] = {}
    for value in values:
        name = member_name(spec, value)
        if not _NAME.match(name) or len(name) > 200:
            problems.append(f"series block {spec.name!r}: value {value!r} of column {spec.params['series_column']!r} "
                            f"gives the series name {name!r}, which is not valid (letters, digits, '_', '.', '-', "
                            "starting with a letter or digit): set series_prefix")
        elif name in named:
            problems.append(f"series block {spec.name!r}: values {named[name]!r} and {value!r} both give the series "
                            f"name {name!r}")
        named[name] = value
    return problems
