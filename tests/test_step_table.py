"""The step table is the one list of steps: the database accepts exactly its names, and every command runs
steps it declares, partition steps before the run-wide ones that read them."""

from __future__ import annotations

import re

import pytest

from forecasting.steps.dispatch import run_partition_step
from forecasting.steps.table import COMMANDS, STEPS, command_steps, last_partition_step


def test_the_database_accepts_exactly_the_step_names_of_the_table(conn):
    (definition,) = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "WHERE t.relname = 'run_steps' AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%step%'"
    ).fetchone()
    assert set(re.findall(r"'(\w+)'::text", definition)) == set(STEPS)


def test_every_command_is_made_of_declared_steps():
    for command, names in COMMANDS.items():
        assert [s.name for s in command_steps(command)] == list(names)
        assert last_partition_step(command).scope == "partition"
    assert last_partition_step("train").name == "train" and last_partition_step("backtest").name == "backtest"
    assert {s.scope for s in STEPS.values()} == {"partition", "run"}
    for step in STEPS.values():  # every entry point resolves
        module, function = step.entry.split(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_an_unknown_step_or_command_is_refused_by_name(conn):
    with pytest.raises(ValueError, match="unknown step 'fit'; steps: features, backtest, select, train, predict"):
        run_partition_step(conn, "fit", run_id=1, key="D:1/1")
    with pytest.raises(ValueError, match="unknown command 'deploy'"):
        command_steps("deploy")
