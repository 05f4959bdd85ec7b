"""Composes the modeling steps into ``forecasting run | backtest | train | predict`` for one process (the
CLI): plan, then each step over every partition, then publish. Nothing else happens here; the Airflow DAGs
compose the same steps as mapped tasks.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from forecasting.config import PipelineConfig
from forecasting.db import Database, apply_migrations
from forecasting.ingest.pipeline import IngestReport, ingest
from forecasting.steps.plan import finish_run, plan_run
from forecasting.steps.table import command_steps
from forecasting.store.data_issues import run_data_issues
from forecasting.store.results import run_champion_table, run_forecast_heads, run_inflation
from forecasting.store.steps import run_skips, step_summaries
from forecasting.web.numbers import format_number

__all__ = ["RunReport", "execute"]

_log = logging.getLogger(__name__)

@dataclass
class RunReport:
    run_id: int
    command: str
    status: str = "running"
    partitions: list[dict] = field(default_factory=list)
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)       # step, partition_key, status, seconds, summary
    skips: pd.DataFrame = field(default_factory=pd.DataFrame)       # series, step, partition_key, model, reason
    data_issues: pd.DataFrame = field(default_factory=pd.DataFrame)  # series, source, role, modelled, reason
    champions: pd.DataFrame = field(default_factory=pd.DataFrame)   # series, freq, champion, sMAPE, MASE, next
    inflation: pd.DataFrame = field(default_factory=pd.DataFrame)   # model, latest, as_known (mean MASE)
    ingest: IngestReport | None = None
    errors: dict[str, str] = field(default_factory=dict)           # partition key ('' = run) -> failed step

    @property
    def skipped_series(self) -> pd.DataFrame:
        """Series skipped as a whole, with the reason."""
        return self.skips[self.skips["model"].isna()] if not self.skips.empty else self.skips

    def step_summary(self, step: str) -> list[dict]:
        rows = self.steps[self.steps["step"] == step] if not self.steps.empty else self.steps
        return [r for r in rows["summary"] if r] if not rows.empty else []

    def forecast_counts(self) -> pd.DataFrame:
        """Per model: partitions, series and forecast rows the predict step wrote, with the horizon."""
        rows: dict[str, dict] = {}
        for summary in self.step_summary("predict"):
            for model, info in summary.get("models", {}).items():
                row = rows.setdefault(model, {"model": model, "partitions": 0, "series": 0, "rows": 0,
                                              "horizon": summary.get("horizon")})
                row["partitions"] += 1
                row["series"] += info["series"]
                row["rows"] += info["rows"]
        return pd.DataFrame([rows[m] for m in sorted(rows)])


def execute(database: Database, config: PipelineConfig, *, command: str, config_path: str | None = None,
            force: bool = False, triggered_by: str = "cli", progress: bool = False) -> RunReport:
    """Run ``command`` for ``config`` (``run`` ingests first), every step over every partition in turn."""
    ingest_report = None
    if command == "run":
        ingest_report = ingest(database, config, config_path=config_path, triggered_by=triggered_by,
                               progress=progress)
    with database.connect() as conn:
        apply_migrations(conn)
        run_id, partitions = plan_run(conn, config, command=command, triggered_by=triggered_by,
                                      ingest_run_id=ingest_report.ingest_run_id if ingest_report else None,
                                      owned=True)
        report = RunReport(run_id=run_id, command=command, ingest=ingest_report,
                           partitions=[p.task(run_id) for p in partitions])
        n_models = len(config.models.enabled)
        broken: dict[str, str] = {}  # a partition whose step failed skips its later steps; the others go on
        try:
            for step in command_steps(command):
                if step.scope == "run":
                    _guarded(step.name, broken, "", step.run, conn, run_id=run_id)
                    continue
                fits = _fits_per_model(config) if step.name == "backtest" else 1
                total = len(partitions) * n_models * fits if fits is not None else None
                with _bar(step.name, total if step.per_model else len(partitions), enabled=progress) as tick:
                    for partition in partitions:
                        if partition.key not in broken:
                            _guarded(step.name, broken, partition.key, step.run, conn, run_id=run_id,
                                     key=partition.key, force=force, progress=tick if step.per_model else None)
                        if not step.per_model:
                            tick("")
        finally:
            report.status, _ = finish_run(conn, run_id=run_id)
        report.errors = broken
        report.steps = step_summaries(conn, run_id=run_id)
        report.skips = run_skips(conn, run_id=run_id)
        report.data_issues = run_data_issues(conn, run_id=run_id)
        report.champions = _champion_table(conn, run_id)
        report.inflation = _inflation_table(conn, run_id)
    return report


def _guarded(step: str, broken: dict[str, str], broken_key: str, work, *args, **kwargs) -> None:
    """Run one step of one partition; a failure is logged with its traceback and marks the partition broken."""
    try:
        work(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - recorded in run_steps; the run ends partial or failed
        _log.exception("%s of %s failed", step, broken_key or "the run")
        broken[broken_key] = f"{step}: {type(exc).__name__}: {exc}"


def _fits_per_model(config: PipelineConfig) -> int | None:
    """Backtest fits of one model in one partition (modes × windows; as_known may reuse latest); None when the
    windows are "auto", since each partition resolves them from its own data only when its backtest loads it."""
    if config.backtest.n_windows == "auto":
        return None
    return config.backtest.n_windows * len(config.backtest.modes)


@contextmanager
def _bar(step: str, total: int | None, *, enabled: bool):
    """A tqdm bar for one step over partitions × models, shown only on a terminal (a count when total is None)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _name: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=step, unit="fit" if step == "backtest" else "model", leave=True) as bar:
        def tick(name: str) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)
        yield tick


def _champion_table(conn, run_id: int) -> pd.DataFrame:
    table = run_champion_table(conn, run_id=run_id)
    if table.empty:
        return table
    heads = run_forecast_heads(conn, run_id=run_id)
    nexts = {(s, m): ", ".join(format_number(v, grouping=False) for v in g["yhat"])
             for (s, m), g in heads.groupby(["series", "model"])}
    table["next"] = [nexts.get((s, m), "") for s, m in zip(table["series"], table["champion"], strict=True)]
    return table


def _inflation_table(conn, run_id: int) -> pd.DataFrame:
    data = run_inflation(conn, run_id=run_id)
    if data.empty:
        return data
    return data.pivot_table(index="model", columns="mode", values="value", aggfunc="mean").reset_index()
