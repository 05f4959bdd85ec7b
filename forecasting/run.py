"""Entry points behind ``forecasting train | backtest | predict | run``: one pipeline run each."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from forecasting.config import PipelineConfig
from forecasting.db import Database, apply_migrations
from forecasting.ingest import IngestReport, ingest
from forecasting.panel import SERIES, STEP, YHAT
from forecasting.pipeline import GroupReport, code_version, load_groups, model_group
from forecasting.store.results import pipeline_run_finish, pipeline_run_start

__all__ = ["COMMAND_STEPS", "RunReport", "execute"]

_log = logging.getLogger(__name__)

COMMAND_STEPS = {
    "backtest": ("backtest",),
    "train": ("train",),
    "predict": ("predict",),
    "run": ("backtest", "train", "predict"),
}


@dataclass
class RunReport:
    run_id: int
    command: str
    groups: list[GroupReport] = field(default_factory=list)
    ingest: IngestReport | None = None

    @property
    def failures(self) -> list[dict]:
        return [f for g in self.groups for f in g.failures]

    def summary(self) -> dict:
        return {
            "groups": [{"freq": g.freq, "model_versions": g.model_versions, "reused": g.reused,
                        "n_forecasts": len(g.forecasts), "failures": g.failures, "n_fallbacks": len(g.fallbacks)}
                       for g in self.groups],
            "ingest_run_id": self.ingest.ingest_run_id if self.ingest else None,
        }

    def champion_table(self) -> pd.DataFrame:
        """series, freq, champion, its backtest sMAPE and MASE, and the next forecasts of the champion."""
        rows = []
        for group in self.groups:
            if group.champions.empty:
                continue
            scores = group.scores.pivot_table(index=["model", SERIES], columns="metric", values="value")
            for champion in group.champions.itertuples(index=False):
                score = scores.loc[(champion.model, champion.series)] if (champion.model, champion.series) in \
                    scores.index else {}
                future = group.forecasts
                if not future.empty:
                    future = future[(future["model"] == champion.model) & (future[SERIES] == champion.series)]
                    future = future.sort_values(STEP)
                rows.append({"series": champion.series, "freq": group.freq, "champion": champion.model,
                             "sMAPE": score.get("smape"), "MASE": score.get("mase"),
                             "next": ", ".join(f"{v:.4g}" for v in future[YHAT].head(3)) if len(future) else ""})
        return pd.DataFrame(rows)

    def inflation_table(self) -> pd.DataFrame:
        """Mean MASE per model in 'latest' and 'as_known' backtests: how much revisions flatter the past."""
        frames = [g.inflation for g in self.groups if not g.inflation.empty]
        if not frames:
            return pd.DataFrame()
        data = pd.concat(frames, ignore_index=True)
        data = data[data["metric"] == "mase"]
        return data.pivot_table(index="model", columns="mode", values="value", aggfunc="mean").reset_index()


def execute(database: Database, config: PipelineConfig, *, command: str, config_path: str | None = None,
            force: bool = False, triggered_by: str = "cli", progress: bool = False) -> RunReport:
    """Run ``command`` for ``config``; ``run`` ingests first. Records the run and its outcome."""
    steps = COMMAND_STEPS[command]
    ingest_report = None
    if command == "run":
        ingest_report = ingest(database, config, config_path=config_path, triggered_by=triggered_by,
                               progress=progress)
    with database.connect() as conn:
        apply_migrations(conn)
        run_id = pipeline_run_start(conn, command=command, config_name=config.name,
                                    config=config.model_dump(mode="json"), code_version=code_version(),
                                    triggered_by=triggered_by,
                                    ingest_run_id=ingest_report.ingest_run_id if ingest_report else None)
        report = RunReport(run_id=run_id, command=command, ingest=ingest_report)
        try:
            for group in load_groups(conn, config):
                _log.info("run %d: %s on %d %s series", run_id, "/".join(steps), group.panel[SERIES].nunique(),
                          group.freq)
                report.groups.append(model_group(conn, run_id, config, group, steps=steps, force=force))
        except Exception as exc:
            pipeline_run_finish(conn, run_id=run_id, status="failed", summary=report.summary(),
                                error=f"{type(exc).__name__}: {exc}")
            raise
        pipeline_run_finish(conn, run_id=run_id, status="succeeded", summary=report.summary())
    return report
