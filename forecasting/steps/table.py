"""The modeling steps and the commands made of them, declared once: the CLI's composer (``forecasting.run``),
the Airflow DAGs, the run record (``finish_run``) and the benchmarks all read this table, and a test checks the
database's allowed step names against it. Adding a step is one module with its entry function and one entry
here.

Only the standard library at module level: the Airflow DAG file reads the table at parse time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg

__all__ = ["COMMANDS", "STEPS", "Step", "command_steps", "last_partition_step"]


@dataclass(frozen=True)
class Step:
    """One modeling step.

    Attributes:
        name: its name in the run record, the logs and the Airflow task id.
        scope: "partition" (one task per partition of the run) or "run" (one task over every partition).
        per_model: it reports progress once per model (the CLI's progress bar).
        entry: "module:function" called as ``function(conn, *, run_id[, key][, progress][, force])``.
        timeout_hours: the Airflow task's execution timeout (None: Airflow's default).
        forced: it takes ``force`` (retrain even when a registered version fits).
    """

    name: str
    scope: Literal["partition", "run"]
    per_model: bool
    entry: str
    timeout_hours: float | None = None
    forced: bool = False

    def run(self, conn: psycopg.Connection, *, run_id: int, key: str = "", force: bool = False,
            progress: Callable[[str], None] | None = None) -> dict:
        """Run the step over partition ``key`` of run ``run_id`` (the whole run for a run-scoped step)."""
        module, function = self.entry.split(":")
        kwargs: dict = {"run_id": run_id}
        if self.scope == "partition":
            kwargs["key"] = key
        if self.per_model:
            kwargs["progress"] = progress
        if self.forced:
            kwargs["force"] = force
        # the worker processes the per-series models fit on live as long as the step: reused across its windows
        # and models, stopped when it ends, so the process running it can exit at once
        from forecasting.models.parallel import worker_processes

        with worker_processes():
            return getattr(importlib.import_module(module), function)(conn, **kwargs)


STEPS: dict[str, Step] = {step.name: step for step in (
    Step("features", "partition", False, "forecasting.steps.features:features_partition", timeout_hours=1),
    Step("backtest", "partition", True, "forecasting.steps.backtest:backtest_partition", timeout_hours=4),
    # champions over every partition whose backtest got through
    Step("select", "run", False, "forecasting.steps.select:select_champions"),
    Step("train", "partition", True, "forecasting.steps.train:train_partition", timeout_hours=4, forced=True),
    Step("predict", "partition", True, "forecasting.steps.predict:predict_partition", timeout_hours=2),
)}

# the steps of each command, in order
COMMANDS: dict[str, tuple[str, ...]] = {
    "backtest": ("features", "backtest", "select"),
    "train": ("features", "backtest", "select", "train"),
    "predict": ("predict",),
    "run": ("features", "backtest", "select", "train", "predict"),
}


def command_steps(command: str) -> tuple[Step, ...]:
    """The steps ``command`` runs, in order."""
    try:
        return tuple(STEPS[name] for name in COMMANDS[command])
    except KeyError:
        raise ValueError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}") from None


def last_partition_step(command: str) -> Step:
    """The step whose success per partition means the partition got through ``command``."""
    return [s for s in command_steps(command) if s.scope == "partition"][-1]
