"""Validation against real Great Expectations: one validator (and one GX import) for the whole module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ConfigError
from forecasting.ingest.validation import (
    ExpectationSpec,
    FrameValidator,
    ValidationOutcome,
    check_expectation_specs,
)
from forecasting.sources.base import ValueBounds, to_canonical

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = ValueBounds(min_value=0, max_value=100)
NO_BOUNDS = ValueBounds()
NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
NUMERIC = "expect_column_values_to_be_in_type_list"
BETWEEN = "expect_column_values_to_be_between"
ROW_COUNT = "expect_table_row_count_to_be_between"


@pytest.fixture(scope="module")
def validator() -> FrameValidator:
    return FrameValidator()


def make_frame(values: list, timestamps: list | None = None) -> pd.DataFrame:
    if timestamps is None:
        timestamps = list(pd.date_range("2024-01-01", periods=len(values), freq="D"))
    return to_canonical(timestamps, values)


def failed_checks(outcome: ValidationOutcome) -> list[tuple[str, str | None]]:
    return [(entry["expectation_type"], entry["kwargs"].get("column")) for entry in outcome.failed]


def test_good_frame_passes(validator: FrameValidator) -> None:
    outcome = validator.validate(make_frame([1.0, 2.5, 99.0]), series="co2", bounds=BOUNDS)

    assert outcome.success
    assert outcome.failed == []
    assert outcome.summary["statistics"]["evaluated_expectations"] == 6
    assert outcome.message("co2") == "series 'co2': all 6 expectations passed"


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1, 2, 3], dtype="int64"),
        pd.Series([1.0, 2.0, 3.0], dtype="float32"),
        pd.Series([1, 2.5, np.float64(3)], dtype=object),
        pd.Series([1, 2, 3], dtype="Int64"),
        pd.Series([1.0, 2.0, 3.0], dtype="Float64"),
    ],
    ids=["int64", "float32", "object-numbers", "nullable-Int64", "nullable-Float64"],
)
def test_numeric_dtypes_pass(validator: FrameValidator, values: pd.Series) -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=3, freq="D"), "value": values})

    assert validator.validate(frame, series="s", bounds=BOUNDS).success


def test_nan_value_fails(validator: FrameValidator) -> None:
    outcome = validator.validate(make_frame([1.0, np.nan, 3.0, 4.0]), series="co2", bounds=BOUNDS)

    assert not outcome.success
    assert failed_checks(outcome) == [(NOT_NULL, "value")]
    assert outcome.failed[0]["unexpected_count"] == 1
    assert outcome.failed[0]["partial_unexpected_list"] == [None]
    assert outcome.message("co2") == (
        "series 'co2': 1 of 6 expectations failed: "
        "expect_column_values_to_not_be_null(value): 1 unexpected (25%)"
    )


def test_all_nan_value_fails(validator: FrameValidator) -> None:
    outcome = validator.validate(make_frame([np.nan] * 3), series="co2", bounds=BOUNDS)

    assert failed_checks(outcome) == [(NOT_NULL, "value")]
    assert outcome.failed[0]["unexpected_percent"] == 100.0


def test_unparseable_timestamp_fails(validator: FrameValidator) -> None:
    frame = make_frame([1.0, 2.0, 3.0], ["2024-01-01", "not a date", "2024-01-03"])
    outcome = validator.validate(frame, series="co2", bounds=BOUNDS)

    assert frame["ts"].isna().sum() == 1
    assert failed_checks(outcome) == [(NOT_NULL, "ts")]


def test_duplicate_timestamps_fail(validator: FrameValidator) -> None:
    frame = make_frame([1.0, 2.0, 3.0], ["2024-01-01", "2024-01-01", "2024-01-02"])
    outcome = validator.validate(frame, series="co2", bounds=BOUNDS)

    assert failed_checks(outcome) == [(UNIQUE, "ts")]
    assert outcome.failed[0]["partial_unexpected_list"] == ["2024-01-01T00:00:00", "2024-01-01T00:00:00"]
    assert outcome.message("co2") == (
        "series 'co2': 1 of 6 expectations failed: expect_column_values_to_be_unique(ts): "
        "2 unexpected (66.7%), e.g. ['2024-01-01T00:00:00', '2024-01-01T00:00:00']"
    )


def test_value_above_max_fails(validator: FrameValidator) -> None:
    outcome = validator.validate(make_frame([1.0, 140.0, 3.0]), series="co2", bounds=BOUNDS)

    assert failed_checks(outcome) == [(BETWEEN, "value")]
    assert outcome.failed[0]["partial_unexpected_list"] == [140.0]
    assert outcome.message("co2") == (
        "series 'co2': 1 of 6 expectations failed: "
        "expect_column_values_to_be_between(value, min 0, max 100): 1 unexpected (33.3%), e.g. [140.0]"
    )


def test_zero_fails_a_strict_min_but_passes_a_non_strict_one(validator: FrameValidator) -> None:
    frame = make_frame([0.0, 5.0, 10.0])

    strict = validator.validate(frame, series="price", bounds=ValueBounds(min_value=0, strict_min=True))
    inclusive = validator.validate(frame, series="volume", bounds=ValueBounds(min_value=0))

    assert failed_checks(strict) == [(BETWEEN, "value")]
    assert strict.failed[0]["partial_unexpected_list"] == [0.0]
    assert strict.message("price") == (
        "series 'price': 1 of 6 expectations failed: "
        "expect_column_values_to_be_between(value, min 0, max 1e+30, strict_min): 1 unexpected (33.3%), e.g. [0.0]"
    )
    assert inclusive.success


def test_value_below_strict_min_fails(validator: FrameValidator) -> None:
    bounds = ValueBounds(min_value=0, max_value=None, strict_min=True)
    outcome = validator.validate(make_frame([-1.0, 1.0]), series="price", bounds=bounds)

    assert failed_checks(outcome) == [(BETWEEN, "value")]


def test_without_source_bounds_only_the_model_range_applies(validator: FrameValidator) -> None:
    outcome = validator.validate(make_frame([-1e9, 1e9]), series="s", bounds=NO_BOUNDS)

    assert outcome.success
    assert outcome.summary["statistics"]["evaluated_expectations"] == 6  # ±1e30: what the models compute with
    beyond = validator.validate(make_frame([1.0, 1e31]), series="s", bounds=NO_BOUNDS)
    assert failed_checks(beyond) == [(BETWEEN, "value")]


def test_strings_in_value_fail(validator: FrameValidator) -> None:
    # to_canonical keeps what the source delivered; pandas 3 stores pure strings as the "str" dtype,
    # which the type check rejects for the column as a whole.
    outcome = validator.validate(make_frame(["1.5", "2.5", "n/a"]), series="co2", bounds=BOUNDS)

    assert not outcome.success
    assert (NUMERIC, "value") in failed_checks(outcome)
    assert "expect_column_values_to_be_in_type_list(value, type_list [float, int, float32, …])" in (
        outcome.message("co2")
    )


def test_mixed_strings_and_numbers_fail_with_every_problem(validator: FrameValidator) -> None:
    values = pd.Series([1.0, "n/a", 3, None], dtype=object)
    frame = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=4, freq="D"), "value": values})

    outcome = validator.validate(frame, series="co2", bounds=BOUNDS)

    numeric = outcome.failed[1]
    assert failed_checks(outcome) == [(NOT_NULL, "value"), (NUMERIC, "value"), (BETWEEN, "value")]
    assert (numeric["unexpected_count"], numeric["partial_unexpected_list"]) == (1, ["n/a"])
    assert outcome.message("co2") == (
        "series 'co2': 3 of 6 expectations failed: "
        "expect_column_values_to_not_be_null(value): 1 unexpected (25%); "
        "expect_column_values_to_be_in_type_list(value, type_list [float, int, float32, …]): "
        "1 unexpected (33.3%), e.g. ['n/a']; "
        "expect_column_values_to_be_between(value, min 0, max 100): could not evaluate: "
        "Column values, min_value, and max_value must either be None or of the same type."
    )


def test_every_failure_is_reported_in_suite_order(validator: FrameValidator) -> None:
    frame = make_frame([np.nan, 5.0, 140.0, 7.0], ["2024-01-01", "2024-01-01", "garbage", "2024-01-03"])

    outcome = validator.validate(frame, series="co2", bounds=BOUNDS)

    assert failed_checks(outcome) == [
        (NOT_NULL, "ts"),
        (UNIQUE, "ts"),
        (NOT_NULL, "value"),
        (BETWEEN, "value"),
    ]
    assert outcome.message("co2").startswith("series 'co2': 4 of 6 expectations failed: ")


def test_empty_frame_fails_naming_empty(validator: FrameValidator) -> None:
    outcome = validator.validate(make_frame([]), series="co2", bounds=BOUNDS)

    assert failed_checks(outcome) == [(ROW_COUNT, None)]
    assert outcome.failed[0]["observed_value"] == 0
    assert outcome.message("co2") == (
        "series 'co2': 1 of 6 expectations failed: "
        "expect_table_row_count_to_be_between(min 1): frame is empty (0 rows)"
    )


def test_frame_without_columns_fails_instead_of_crashing(validator: FrameValidator) -> None:
    outcome = validator.validate(pd.DataFrame(), series="co2", bounds=BOUNDS)

    assert not outcome.success
    assert len(outcome.failed) == 6
    assert 'The column "value" in BatchData does not exist.' in outcome.message("co2")


def test_extra_expectation_can_fail_and_pass(validator: FrameValidator) -> None:
    frame = make_frame([1.0, 50.0, 90.0])
    spec = ExpectationSpec(
        type="expect_column_max_to_be_between", kwargs={"column": "value", "max_value": 80}
    )

    failing = validator.validate(frame, series="co2", bounds=BOUNDS, extra=[spec])
    passing = validator.validate(frame.iloc[:2], series="co2", bounds=BOUNDS, extra=[spec])

    assert failing.failed == [
        {
            "expectation_type": "expect_column_max_to_be_between",
            "kwargs": {"column": "value", "max_value": 80.0},
            "observed_value": 90.0,
        }
    ]
    assert failing.message("co2") == (
        "series 'co2': 1 of 7 expectations failed: "
        "expect_column_max_to_be_between(value, max 80): observed 90"
    )
    assert passing.success
    assert passing.summary["statistics"]["evaluated_expectations"] == 7


def test_invalid_extra_expectation_is_a_config_error(validator: FrameValidator) -> None:
    spec = ExpectationSpec(
        type="expect_column_max_to_be_between", kwargs={"column": "value", "max_value": "lots"}
    )

    with pytest.raises(ConfigError) as raised:
        validator.validate(make_frame([1.0]), series="co2", bounds=BOUNDS, extra=[spec])

    assert str(raised.value) == (
        "series 'co2': invalid extra expectations: extra expectation #1 "
        "(expect_column_max_to_be_between): max_value: value is not a valid float"
    )


def test_check_expectation_specs_reports_every_problem() -> None:
    specs = [
        ExpectationSpec(type="expect_column_max_to_be_between", kwargs={"column": "value", "max_value": 5}),
        ExpectationSpec(type="expect_colum_max_to_be_between", kwargs={"column": "value"}),
        ExpectationSpec(type="ExpectColumnMeanToBeBetween", kwargs={"column": "value"}),
        ExpectationSpec(type="expect_column_max_to_be_between", kwargs={"column": "value", "max_value": "x"}),
        ExpectationSpec(type="expect_column_max_to_be_between", kwargs={"column": "value", "maxx": 5}),
        ExpectationSpec(type="expect_column_max_to_be_between", kwargs={"column": "y", "max_value": 5}),
        ExpectationSpec(type="expect_column_values_to_be_between", kwargs={"column": "value"}),
    ]

    assert check_expectation_specs(specs) == [
        "extra expectation #2 (expect_colum_max_to_be_between): unknown expectation type "
        "'expect_colum_max_to_be_between'; did you mean 'expect_column_max_to_be_between'?",
        "extra expectation #3 (ExpectColumnMeanToBeBetween): unknown expectation type "
        "'ExpectColumnMeanToBeBetween'; did you mean 'expect_column_mean_to_be_between'?",
        "extra expectation #4 (expect_column_max_to_be_between): max_value: value is not a valid float",
        "extra expectation #5 (expect_column_max_to_be_between): maxx: extra fields not permitted",
        "extra expectation #6 (expect_column_max_to_be_between): column 'y' does not exist; "
        "frames have columns 'ts' and 'value'",
        "extra expectation #7 (expect_column_values_to_be_between): "
        "min_value and max_value cannot both be None",
    ]


def test_expectation_spec_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra_forbidden"):
        ExpectationSpec.model_validate({"type": "expect_column_max_to_be_between", "kwarg": {}})


def test_outcome_is_strict_json(validator: FrameValidator) -> None:
    frame = make_frame([np.nan, 140.0, np.inf], ["2024-01-01", "2024-01-01", "bad"])

    outcome = validator.validate(frame, series="co2", bounds=BOUNDS)

    # allow_nan=False: PostgreSQL jsonb rejects NaN/Infinity, so they must have become null.
    assert json.loads(json.dumps(outcome.summary, allow_nan=False))["success"] is False
    assert json.loads(json.dumps(outcome.failed, allow_nan=False)) == outcome.failed
    assert outcome.summary["statistics"]["unsuccessful_expectations"] == len(outcome.failed) == 4


def test_validation_leaves_the_frame_untouched(validator: FrameValidator) -> None:
    frame = make_frame([1.0, np.nan, 140.0])
    before = frame.copy()

    validator.validate(frame, series="co2", bounds=BOUNDS)

    pd.testing.assert_frame_equal(frame, before)


def test_importing_the_module_does_not_import_gx() -> None:
    # GX costs seconds to import; DAG parsing and config checks without extras must not pay for it.
    code = "import sys, forecasting.ingest.validation; print('great_expectations' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert result.stdout.strip() == "False"


def test_great_expectations_does_not_flood_the_log_at_info():
    import subprocess
    import sys

    code = (
        "import io, logging\n"
        "stream = io.StringIO()\n"
        "logging.basicConfig(level=logging.INFO, stream=stream)\n"
        "from forecasting.ingest.validation import _create_batch_definition\n"
        "_create_batch_definition()\n"
        "print(sum('great_expectations' in line for line in stream.getvalue().splitlines()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert int(result.stdout.strip().splitlines()[-1]) <= 1  # was 200+ "Skipping registering function" lines


def _bad_values_item(series: str, values: list, **kwargs):
    from forecasting.ingest.shard_validation import ValidationItem

    return ValidationItem(series, make_frame(values, kwargs.pop("timestamps", None)), kwargs.pop("bounds", BOUNDS),
                          **kwargs)


def test_a_shard_validates_at_once_with_the_per_series_outcomes(validator: FrameValidator) -> None:
    from forecasting.ingest.shard_validation import validate_shard

    day = pd.Timestamp("2024-01-01")
    max_below_50 = [ExpectationSpec(type="expect_column_max_to_be_between", kwargs={"column": "value",
                                                                                      "max_value": 50})]
    items = [
        _bad_values_item("good", [1.0, 2.0, 3.0]),
        _bad_values_item("too_high", [1.0, 140.0, 150.0, 2.0]),
        _bad_values_item("nan", [1.0, np.nan, 3.0]),
        _bad_values_item("dup", [1.0, 2.0, 3.0], timestamps=[day, day + pd.Timedelta(days=1),
                                                              day + pd.Timedelta(days=1)]),
        _bad_values_item("text", [1.0, "n/a", 3.0]),  # not representable in the long frame: validated alone
        _bad_values_item("empty", []),
        _bad_values_item("own_rule_fails", [1.0, 60.0], extra=max_below_50),
        _bad_values_item("own_rule_holds", [1.0, 40.0], extra=max_below_50),
        _bad_values_item("other_bounds", [140.0, 150.0], bounds=NO_BOUNDS),
    ]
    shard = validate_shard(validator, items)
    alone = [validator.validate(i.frame, series=i.series, bounds=i.bounds, extra=i.extra) for i in items]
    for item, together, single in zip(items, shard, alone, strict=True):
        assert together.success == single.success, item.series
        assert together.message(item.series) == single.message(item.series), item.series
        assert together.summary["statistics"]["evaluated_expectations"] == \
            single.summary["statistics"]["evaluated_expectations"]
    assert [o.success for o in shard] == [True, False, False, False, False, False, False, True, True]
    assert "2 unexpected (50%), e.g. [140.0, 150.0]" in shard[1].message("too_high")
    assert failed_checks(shard[3]) == [(UNIQUE, "ts")]
    assert json.loads(json.dumps(shard[1].failed, allow_nan=False))  # stored as jsonb in quarantine


def test_a_shard_is_one_great_expectations_run(validator: FrameValidator, monkeypatch) -> None:
    from great_expectations.datasource.fluent.interfaces import Batch

    from forecasting.ingest.shard_validation import validate_shard

    runs = []
    original = Batch.validate
    monkeypatch.setattr(Batch, "validate", lambda self, *a, **k: runs.append(1) or original(self, *a, **k))
    outcomes = validate_shard(validator, [_bad_values_item(f"s{i}", [1.0, 2.0, float(i % 90)]) for i in range(200)])
    assert all(o.success for o in outcomes) and len(runs) == 1
