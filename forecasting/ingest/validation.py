"""Data-quality gate between download and storage, built on Great Expectations (GX Core 1.x).

Every downloaded canonical frame (``ts``, ``value``) runs through one standard suite (not empty, ts not
null and unique, value not null, numeric and within the source's bounds) plus the per-series extra
expectations from the user's config. The outcome is plain JSON-ready data so the store can put it in a
quarantine table and the DAG can raise :class:`~forecasting.errors.DataQualityError` with a readable text.

GX is imported lazily: the import costs several seconds, so only code paths that really validate pay it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import ConfigError
from forecasting.sources.base import TS, VALUE, ValueBounds

if TYPE_CHECKING:
    from types import ModuleType

    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.expectations import Expectation

__all__ = [
    "ExpectationSpec",
    "FrameValidator",
    "ValidationOutcome",
    "check_expectation_specs",
]

# Type names for ExpectColumnValuesToBeInTypeList. For a typed column GX compares the column dtype with
# these (so a pandas ``str`` or ``bool`` column fails as a whole, observed_value names its dtype); for an
# ``object`` column it checks every non-null element with isinstance, so mixed columns report the
# offending strings. "float"/"int" cover both numpy float64/int64 and Python float/int elements.
_NUMERIC_TYPES = (
    "float",
    "int",
    "float32",
    "int8",
    "int16",
    "int32",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "Float64Dtype",
    "Int64Dtype",
)
# BASIC already carries counts, percentages and partial_unexpected_list; SUMMARY adds value counts and
# row indices and cost ~40% more time per validation (39 ms vs 28 ms for 1,000 rows, measured).
_RESULT_FORMAT = "BASIC"
_RESULT_KEYS = ("unexpected_count", "unexpected_percent", "partial_unexpected_list", "observed_value")
_EXAMPLES_SHOWN = 3


class ExpectationSpec(BaseModel):
    """One extra expectation from the config: a GX expectation name in snake_case and its kwargs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


@dataclass
class ValidationOutcome:
    """Result of validating one frame; ``failed`` and ``summary`` are JSON-serializable (jsonb-ready)."""

    success: bool
    failed: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def message(self, series: str) -> str:
        """One line naming the series and, for each failed expectation, a short reason."""
        evaluated = self.summary.get("statistics", {}).get("evaluated_expectations", "?")
        if self.success:
            return f"series {series!r}: all {evaluated} expectations passed"
        reasons = "; ".join(_describe_failure(entry) for entry in self.failed)
        return f"series {series!r}: {len(self.failed)} of {evaluated} expectations failed: {reasons}"


def check_expectation_specs(specs: Sequence[ExpectationSpec]) -> list[str]:
    """Readable problems with the configured extra expectations; an empty list means all are usable.

    The type is resolved through GX's expectation registry and the kwargs are checked by building the
    GX expectation itself, so whatever GX accepts here it also accepts at validation time.
    """
    return _build_extras(specs)[1]


# values beyond this overflow the models' arithmetic (squares, differences, scaled errors): 1e308 turned MASE
# into -inf; they are quarantined at ingest
MAX_ABS_VALUE = 1e30


def at_store_resolution(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its timestamps as PostgreSQL will keep them (microseconds)."""
    if TS not in frame.columns or not pd.api.types.is_datetime64_any_dtype(frame[TS]):
        return frame
    return frame.assign(**{TS: frame[TS].dt.floor("us")})


class FrameValidator:
    """Validates canonical frames; create one per task and reuse it for every series in that task.

    The GX context is built on first use and kept: creating it is cheap, but importing GX is not, and a
    single in-memory pandas batch definition serves every frame (the frame is a batch parameter).
    """

    def __init__(self) -> None:
        self._batch_definition: BatchDefinition | None = None

    def validate(
        self,
        frame: pd.DataFrame,
        *,
        series: str,
        bounds: ValueBounds,
        extra: Sequence[ExpectationSpec] = (),
    ) -> ValidationOutcome:
        """Run the standard suite plus ``extra`` on ``frame``; bad data never raises, it fails.

        Raises:
            ConfigError: an extra expectation is unknown to GX or has kwargs GX rejects.
        """
        gx = import_gx()
        expectations = standard_expectations(bounds) + extra_expectations(extra, series=series)
        # A suite is rebuilt per call on purpose: it costs ~0.2 ms against ~28 ms for the validation
        # itself, so caching suites by (bounds, extras) would not be measurably faster.
        suite = gx.ExpectationSuite(name=f"forecasting.{series}", expectations=expectations)
        batch = self.batch_definition().get_batch(batch_parameters={"dataframe": at_store_resolution(frame)})
        # GX catches exceptions per expectation (catch_exceptions defaults to true), so a column of
        # strings or a missing column becomes a failed result with exception_info, not a crash.
        result = batch.validate(suite, result_format=_RESULT_FORMAT)
        return _to_outcome(result, expectations)

    def batch_definition(self) -> BatchDefinition:
        if self._batch_definition is None:
            self._batch_definition = _create_batch_definition()
        return self._batch_definition


def import_gx() -> ModuleType:
    # GX 1.24.1 contains no analytics code any more, but older 1.x releases (pyproject allows >=1.3) read
    # this when creating a context. setdefault keeps an operator's explicit opt-in.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # GX logs hundreds of INFO lines on import ("Skipping registering function ...") and per validation
    # (temporary docs folders): they drowned an ingest task's log. Its warnings and errors still show.
    logging.getLogger("great_expectations").setLevel(max(logging.WARNING, logging.getLogger().level))
    import great_expectations as gx
    import great_expectations.expectations  # noqa: F401  (fills the expectation registry)

    return gx


def _create_batch_definition() -> BatchDefinition:
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Without this GX prints two tqdm "Calculating Metrics" bars to stderr per validation.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas(name="forecasting").add_dataframe_asset(name="series")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def standard_expectations(bounds: ValueBounds) -> list[Expectation]:
    import great_expectations.expectations as gxe

    expectations: list[Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=None),
        gxe.ExpectColumnValuesToNotBeNull(column=TS),
        # checked at the store's resolution (see ``at_store_resolution``): two timestamps within one
        # microsecond would become one row
        gxe.ExpectColumnValuesToBeUnique(column=TS),
        # GX column-map expectations skip nulls, so null values need their own expectation.
        gxe.ExpectColumnValuesToNotBeNull(column=VALUE),
        gxe.ExpectColumnValuesToBeInTypeList(column=VALUE, type_list=list(_NUMERIC_TYPES)),
        # infinity (and 1e309, read as infinity) and values beyond what the models compute with
        gxe.ExpectColumnValuesToBeBetween(
            column=VALUE,
            min_value=-MAX_ABS_VALUE if bounds.min_value is None else max(bounds.min_value, -MAX_ABS_VALUE),
            max_value=MAX_ABS_VALUE if bounds.max_value is None else min(bounds.max_value, MAX_ABS_VALUE),
            strict_min=bounds.strict_min and bounds.min_value is not None,
        ),
    ]
    return expectations


def extra_expectations(specs: Sequence[ExpectationSpec], *, series: str) -> list[Expectation]:
    expectations, problems = _build_extras(specs)
    if problems:
        raise ConfigError(f"series {series!r}: invalid extra expectations: " + "; ".join(problems))
    return expectations


def _build_extras(specs: Sequence[ExpectationSpec]) -> tuple[list[Expectation], list[str]]:
    expectations: list[Expectation] = []
    problems: list[str] = []
    for position, spec in enumerate(specs, start=1):
        expectation, spec_problems = _build_expectation(spec)
        if expectation is not None:
            expectations.append(expectation)
        problems.extend(f"extra expectation #{position} ({spec.type}): {p}" for p in spec_problems)
    return expectations, problems


def _build_expectation(spec: ExpectationSpec) -> tuple[Expectation | None, list[str]]:
    """The GX expectation for ``spec``, or None and the reasons GX refused it."""
    import_gx()
    from great_expectations.compatibility.pydantic import ValidationError
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        expectation_class = get_expectation_impl(spec.type)
    except ExpectationNotFoundError:
        return None, [_unknown_type_problem(spec.type)]
    column = spec.kwargs.get("column")
    if column is not None and column not in (TS, VALUE):
        return None, [f"column {column!r} does not exist; frames have columns {TS!r} and {VALUE!r}"]
    try:
        return expectation_class(**spec.kwargs), []
    except ValidationError as err:
        return None, _pydantic_problems(err)
    except (TypeError, ValueError) as err:
        return None, [str(err)]


def _unknown_type_problem(name: str) -> str:
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    known = list_registered_expectation_implementations()
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # ExpectColumnMaxToBeBetween, a common slip
    guesses = [snake] if snake in known else difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {guesses[0]!r}?" if guesses else ""
    return f"unknown expectation type {name!r}{hint}"


def _pydantic_problems(err: Any) -> list[str]:
    # GX fields are unions with a suite-parameter dict (and dates), so pydantic v1 reports one error
    # per union member; the first one per field is the meaningful one ("value is not a valid float").
    first_by_field: dict[str, str] = {}
    for error in err.errors():
        where = ".".join(str(part) for part in error["loc"])
        first_by_field.setdefault(where, error["msg"])
    return [msg if where == "__root__" else f"{where}: {msg}" for where, msg in first_by_field.items()]


def _to_outcome(
    result: ExpectationSuiteValidationResult, expectations: Sequence[Expectation]
) -> ValidationOutcome:
    suite_order = [(e.expectation_type, e.configuration.kwargs) for e in expectations]
    failed = [failure_entry(r) for r in result.results if not r.success]
    # GX lists results whose metrics raised first; report in suite order so messages are stable.
    failed.sort(key=lambda entry: _position(entry, suite_order))
    return ValidationOutcome(
        success=bool(result.success), failed=failed, summary=jsonable(result.describe_dict())
    )


def failure_entry(result: Any) -> dict[str, Any]:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    entry: dict[str, Any] = {"expectation_type": config.type, "kwargs": jsonable(kwargs)}
    for key in _RESULT_KEYS:
        if key in (result.result or {}):
            entry[key] = jsonable(result.result[key])
    error = _exception_message(result.exception_info or {})
    if error is not None:
        entry["exception"] = error
    return entry


def _exception_message(info: Mapping[str, Any]) -> str | None:
    # exception_info is either one {"raised_exception": ...} dict or a dict of them keyed by metric id.
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None


def _position(entry: Mapping[str, Any], suite_order: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
    for index, (expectation_type, kwargs) in enumerate(suite_order):
        if expectation_type == entry["expectation_type"] and jsonable(kwargs) == entry["kwargs"]:
            return index
    return len(suite_order)


def jsonable(value: Any) -> Any:
    """Plain JSON data: timestamps as ISO strings, NaN/NaT/NA/inf as None, numpy scalars unwrapped.

    PostgreSQL jsonb rejects NaN, so json.dumps' default NaN output is not good enough.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (pd.Timestamp, np.datetime64, dt.date)):  # also datetime and NaT
        stamp = pd.Timestamp(value)
        return None if pd.isna(stamp) else stamp.isoformat()
    if isinstance(value, (pd.Timedelta, np.timedelta64, dt.timedelta)):
        delta = pd.Timedelta(value)
        return None if pd.isna(delta) else delta.isoformat()
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, (int, float, Decimal)):
        number = value if isinstance(value, int) else float(value)
        return number if math.isfinite(number) else None
    if value is pd.NA:
        return None
    return str(value)


def _describe_failure(entry: Mapping[str, Any]) -> str:
    return f"{entry['expectation_type']}({_describe_kwargs(entry.get('kwargs', {}))}): {_reason(entry)}"


def _describe_kwargs(kwargs: Mapping[str, Any]) -> str:
    parts = [str(kwargs["column"])] if "column" in kwargs else []
    for key, value in kwargs.items():
        if key == "column" or value is None or value is False:
            continue
        name = key.removesuffix("_value")
        parts.append(name if value is True else f"{name} {_short(value)}")
    return ", ".join(parts)


def _reason(entry: Mapping[str, Any]) -> str:
    if entry.get("exception"):
        return f"could not evaluate: {entry['exception']}"
    if entry.get("unexpected_count") is not None:
        text = f"{entry['unexpected_count']} unexpected"
        if entry.get("unexpected_percent") is not None:
            text += f" ({entry['unexpected_percent']:.3g}%)"
        examples = [v for v in entry.get("partial_unexpected_list") or [] if v is not None]
        if examples:
            text += f", e.g. {_short(examples, literal=True)}"
        return text
    observed = entry.get("observed_value")
    if entry["expectation_type"] == "expect_table_row_count_to_be_between" and observed == 0:
        return "frame is empty (0 rows)"
    return f"observed {_short(observed)}"


def _short(value: Any, *, literal: bool = False) -> str:
    """Compact rendering for messages, lists cut after a few items.

    Parameters read better compact (``min 0``); offending values are shown as literals (``[140.0]``,
    ``['n/a']``) so the user can tell a float from an int or a string.
    """
    if isinstance(value, list):
        shown = ", ".join(_short(v, literal=literal) for v in value[:_EXAMPLES_SHOWN])
        more = ", …" if len(value) > _EXAMPLES_SHOWN else ""
        return f"[{shown}{more}]"
    if literal:
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
