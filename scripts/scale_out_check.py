"""Scale-out check of Airflow's CeleryExecutor: the mapped modeling tasks of one pipeline spread over two workers.

    .venv/bin/python scripts/scale_out_check.py

Starts everything on loopback in one temporary folder: Debian's ``redis-server`` (the Celery broker; no
persistence), the project's embedded PostgreSQL (Airflow's metadata database, the Celery result backend and a
fresh forecast store: Celery cannot run on SQLite), and Airflow 3 with ``CeleryExecutor``: ``db migrate``,
scheduler, dag-processor, api-server and two ``celery worker`` processes, each reporting its own name as the
task instances' ``hostname`` (``scripts/scale_out_hostname.py``). It writes a pipeline config of 2,000 synthetic
daily CSV series in partitions of 500, unpauses the pipeline's three DAGs, triggers ingest through the REST
API, waits until ingest, train (on the data Asset) and predict (on the model Asset) have succeeded, and prints
which worker ran every mapped instance of the train and predict DAGs, read from Airflow's task-instance records.
The last two lines are ``workers used: N`` (distinct hostnames over those instances) and ``forecast rows: M``
(rows of ``forecasts`` in the forecast store); the exit status is non-zero if N < 2 or M == 0, or when any
step fails (then the logs' tails are printed). Everything is torn down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
PIPELINE = "scale_out"
INGEST, TRAIN, PREDICT = (f"forecasting_{PIPELINE}_{kind}" for kind in ("ingest", "train", "predict"))
MODELING_TASKS = {TRAIN: ("features", "backtest", "train"), PREDICT: ("predict",)}  # mapped over partitions
FINAL_STATES = {"success", "failed", "canceled"}
log = logging.getLogger("scale_out_check")


class CheckFailed(RuntimeError):
    """A step of the check failed; the message says which and why."""


# ---------------------------------------------------------------------------------------------- the pipeline


def write_pipeline(folder: Path, *, n_series: int, n_points: int, partition_size: int, shard_size: int,
                   models: list[str], horizon: int, seed: int = 0) -> Path:
    """``n_series`` daily CSV series under ``folder/data`` and the pipeline config ``folder/configs/<name>.yaml``
    reading them (one block per series); returns the configs folder."""
    import numpy as np
    import yaml

    data, configs = folder / "data", folder / "configs"
    data.mkdir(parents=True)
    configs.mkdir()
    rng = np.random.default_rng(seed)
    days = np.arange(n_points)
    dates = [str(d) for d in np.datetime64("2025-01-01") + days]
    series = []
    for i in range(n_series):
        level, slope, weekly = rng.uniform(50, 500), rng.normal(0, 0.3), rng.uniform(0, 20)
        values = level + slope * days + weekly * np.sin(2 * np.pi * days / 7) + rng.normal(0, 3, n_points).cumsum()
        values = np.maximum(values, 1.0).round(3)
        name = f"s{i:05d}"
        (data / f"{name}.csv").write_text("ts,value\n" + "".join(f"{d},{v}\n" for d, v in zip(dates, values,
                                                                                           strict=True)))
        series.append({"name": name, "source": "csv", "params": {"path": f"../data/{name}.csv"}, "role": "target"})
    config = {
        "name": PIPELINE,
        "description": f"scale-out check: {n_series} synthetic daily series of {n_points} points",
        "schedule": None,  # triggered by the check only
        "series": series,
        "preprocessing": {"horizon": horizon, "target_lags": [1, 7]},
        "models": {"enabled": models},
        "modeling": {"partition_size": partition_size},
        "backtest": {"n_windows": 2, "modes": ["latest"]},
        "prediction": {"explain_top_k": 0},
        "ingest": {"shard_size": shard_size, "retries": 0},
    }
    (configs / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, width=200))
    return configs


# ------------------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int, width: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(line[:width] for line in text.splitlines()[-lines:])


@dataclass
class Processes:
    """Long-running children, each in its own process group (so stopping one stops whatever it spawned),
    logging to ``logs/<name>.log``."""

    log_dir: Path
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with (self.log_dir / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(argv, env=env, cwd=self.log_dir, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.children[name] = process
        log.info("started %s (pid %d)", name, process.pid)
        return process

    def check_alive(self) -> None:
        for name, process in self.children.items():
            if process.poll() is not None:
                raise CheckFailed(f"{name} exited with status {process.returncode}; see its log below")

    def stop_all(self, timeout: float = 20) -> None:
        """SIGTERM to every group, then SIGKILL to whatever is left after ``timeout``: the groups and every
        process that descended from them (a task runner has a process group of its own, and would outlive a
        killed worker)."""
        import psutil

        descendants = self._descendants()
        for name, process in reversed(self.children.items()):
            if process.poll() is None:
                log.info("stopping %s", name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        descendants += self._descendants()
        for process in self.children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(descendants, timeout=5)
        for process in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    def _descendants(self) -> list:
        import psutil

        out = []
        for process in self.children.values():
            with contextlib.suppress(psutil.Error):
                out += psutil.Process(process.pid).children(recursive=True)
        return out

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(f"----- {name}.log (last {lines} lines) -----\n{tail(self.log_dir / f'{name}.log', lines)}"
                         for name in self.children)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, processes: Processes,
             interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        processes.check_alive()
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(processes: Processes, work: Path, port: int) -> str:
    """Debian's redis-server on 127.0.0.1 only, in ``work/redis``, without RDB or AOF persistence."""
    server = shutil.which("redis-server")
    if server is None:
        raise CheckFailed("redis-server is not installed (apt-get install redis-server, or "
                          "scripts/install-test-tools.sh)")
    folder = work / "redis"
    folder.mkdir()
    processes.start("redis", [server, "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
                              "--dir", str(folder), "--save", "", "--appendonly", "no", "--daemonize", "no",
                              "--databases", "1"], os.environ.copy())
    wait_for(lambda: redis_ping(port), 30, "redis-server to answer PING", processes, interval=0.2)
    return f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def embedded_postgres(folder: Path) -> Iterator[str]:
    """The project's embedded PostgreSQL under ``folder`` (Unix socket only), stopped on exit."""
    from forecasting.db.embedded import embedded_server_url, stop_embedded_server

    try:
        yield embedded_server_url(folder)
    finally:
        with contextlib.suppress(Exception):
            stop_embedded_server(folder)
            log.info("stopped the embedded PostgreSQL")


def with_database(url: str, name: str, scheme: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name, scheme=scheme or parts.scheme))


def create_databases(server_url: str, *names: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# ------------------------------------------------------------------------------------------------ REST API


class Api:
    def __init__(self, base_url: str):
        self.base_url, self.token = base_url, ""

    def login(self, username: str, password: str) -> None:
        self.token = self.call("POST", "/auth/token", {"username": username, "password": password})["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise CheckFailed(f"{method} {path}: HTTP {exc.code} {exc.read()[:500]!r}") from None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/api/v2/monitor/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def has_dag(self, dag_id: str) -> bool:
        try:
            self.call("GET", f"/api/v2/dags/{dag_id}")
        except CheckFailed:
            return False
        return True

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after&limit=50")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        out: list[dict] = []
        while True:
            page = self.call("GET", f"{path}?limit=100&offset={len(out)}&order_by=map_index")
            out += page["task_instances"]
            if not page["task_instances"] or len(out) >= page["total_entries"]:
                return out


# ------------------------------------------------------------------------------------------------- the check


@dataclass
class Stack:
    """What the check started; ``teardown`` undoes all of it (also after a partial start)."""

    work: Path
    processes: Processes
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def teardown(self, keep: bool) -> None:
        try:
            self.processes.stop_all()
        finally:
            try:
                self.exits.close()  # the embedded server
            finally:
                if keep:
                    log.info("kept %s", self.work)
                else:
                    shutil.rmtree(self.work, ignore_errors=True)


def airflow_env(args: argparse.Namespace, home: Path, *, port: int, broker: str, metadata: str, forecast: str,
                configs: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(args.concurrency),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",  # Airflow's default, said aloud
        "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # one secret for every component, or the workers' task tokens fail verification at the API server
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # >= 64 bytes for its HMAC
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "FORECASTING_CONFIG_DIR": str(configs),
        "FORECASTING_DATABASE_URL": forecast,
        "GX_ANALYTICS_ENABLED": "false",
    })
    return env


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def start_airflow(args: argparse.Namespace, stack: Stack, env: dict[str, str]) -> Api:
    airflow, processes = str(args.airflow_bin), stack.processes
    started = time.monotonic()
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True,
                             timeout=args.startup_timeout)
    if migrate.returncode != 0:
        raise CheckFailed(f"airflow db migrate failed:\n{(migrate.stdout + migrate.stderr)[-4000:]}")
    log.info("airflow db migrate: %.0f s", time.monotonic() - started)
    processes.start("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", env["AIRFLOW__API__PORT"]],
                    env)
    processes.start("scheduler", [airflow, "scheduler", "--skip-serve-logs"], env)
    processes.start("dag-processor", [airflow, "dag-processor"], env)
    pythonpath = os.pathsep.join(p for p in (str(SCRIPTS), env.get("PYTHONPATH", "")) if p)
    for name in args.worker_names:
        # --skip-serve-logs: the log server would listen on every interface (and both on one port); the
        # task logs are files in the shared AIRFLOW_HOME, which the api-server reads directly
        processes.start(f"worker-{name}", [airflow, "celery", "worker", "--celery-hostname", f"{name}@localhost",
                                           "--concurrency", str(args.concurrency), "--skip-serve-logs"],
                        {**env, "PYTHONPATH": pythonpath, "SCALE_OUT_WORKER_NAME": name,
                         "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scale_out_hostname.hostname"})
    api = Api(f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}")
    wait_for(api.healthy, args.startup_timeout, "the API server", processes)
    api.login("admin", args.password)
    for name in args.worker_names:
        log_path = processes.log_dir / f"worker-{name}.log"
        wait_for(lambda p=log_path, n=name: f"{n}@localhost ready." in tail(p, 400), args.startup_timeout,
                 f"Celery worker {name} to be ready", processes)
    for dag_id in (INGEST, TRAIN, PREDICT):
        wait_for(lambda d=dag_id: api.has_dag(d), args.startup_timeout, f"the dag-processor to serialize {dag_id}",
                 processes, interval=2)
    log.info("Airflow with %d Celery workers is up: %.0f s", len(args.worker_names), time.monotonic() - started)
    return api


def wait_for_run(api: Api, processes: Processes, dag_id: str, deadline: float, run_id: str | None) -> dict:
    """The given run (else the DAG's first run) once it is final; fails on timeout."""
    while True:
        runs = [r for r in api.runs(dag_id) if run_id is None or r["dag_run_id"] == run_id]
        if runs and runs[0]["state"] in FINAL_STATES:
            return runs[0]
        processes.check_alive()
        if time.monotonic() > deadline:
            state = f"run {runs[0]['dag_run_id']} is {runs[0]['state']}" if runs else "no run was created"
            raise CheckFailed(f"timed out waiting for {dag_id} to finish: {state}")
        time.sleep(2)


def task_log_tails(home: Path, dag_id: str, run_id: str, instances: list[dict], lines: int = 15,
                   logs: int = 3) -> str:
    """The state of the given task instances, and the tail of the latest log file of the first ``logs``."""
    out = [f"{ti['task_id']}[{ti['map_index']}] {ti.get('rendered_map_index') or ''}"[:120] + f": {ti['state']}"
           for ti in instances]
    for ti in instances[:logs]:
        mapped = f"map_index={ti['map_index']}/" if ti["map_index"] >= 0 else ""
        pattern = (f"{glob.escape(str(home / 'logs'))}/dag_id={glob.escape(dag_id)}/run_id={glob.escape(run_id)}"
                   f"/task_id={glob.escape(ti['task_id'])}/{mapped}attempt=*.log")
        for path in sorted(glob.glob(pattern))[-1:]:
            out.append(f"----- {path} -----\n{tail(Path(path), lines)}")
    return "\n".join(out)


def run_pipeline(args: argparse.Namespace, api: Api, stack: Stack, home: Path) -> dict[str, dict]:
    for dag_id in (INGEST, TRAIN, PREDICT):  # paused at creation
        api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    started = time.monotonic()
    triggered = api.call("POST", f"/api/v2/dags/{INGEST}/dagRuns", {"logical_date": None})
    log.info("triggered %s run %s", INGEST, triggered["dag_run_id"])
    deadline = started + args.run_timeout
    runs: dict[str, dict] = {}
    for dag_id, run_id in ((INGEST, triggered["dag_run_id"]), (TRAIN, None), (PREDICT, None)):
        run = wait_for_run(api, stack.processes, dag_id, deadline, run_id)
        runs[dag_id] = run
        log.info("%s run %s: %s after %.0f s", dag_id, run["dag_run_id"], run["state"], time.monotonic() - started)
        # every task must succeed: a skipped ingest publish (nothing changed) would mean no training run follows,
        # and the ingest run succeeds even when shard tasks failed after storing their data
        unsuccessful = [ti for ti in api.task_instances(dag_id, run["dag_run_id"]) if ti["state"] != "success"]
        if run["state"] != "success" or unsuccessful:
            raise CheckFailed(f"{dag_id} run {run['dag_run_id']} ended {run['state']} with "
                              f"{len(unsuccessful)} task instance(s) not successful:\n"
                              + task_log_tails(home, dag_id, run["dag_run_id"], unsuccessful))
    return runs


def modeling_instances(api: Api, runs: dict[str, dict]) -> list[dict]:
    rows = []
    for dag_id, tasks in MODELING_TASKS.items():
        for ti in api.task_instances(dag_id, runs[dag_id]["dag_run_id"]):
            if ti["task_id"] in tasks and ti["map_index"] >= 0:
                rows.append({"dag_id": dag_id, "task_id": ti["task_id"], "map_index": ti["map_index"],
                             "label": ti.get("rendered_map_index") or "", "hostname": ti["hostname"] or "",
                             "state": ti["state"]})
    order = {task: i for i, task in enumerate(("features", "backtest", "train", "predict"))}
    return sorted(rows, key=lambda r: (order[r["task_id"]], r["map_index"]))


def host_table(rows: list[dict]) -> str:
    header = ("dag", "task", "map", "partition", "hostname", "state")
    table = [header] + [(r["dag_id"], r["task_id"], str(r["map_index"]), r["label"], r["hostname"], r["state"])
                        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def forecast_rows(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM forecasts").fetchone()[0]


def check(args: argparse.Namespace, stack: Stack) -> dict:
    started = time.monotonic()
    work, processes = stack.work, stack.processes
    configs = write_pipeline(work / "pipeline", n_series=args.series, n_points=args.points,
                             partition_size=args.partition_size, shard_size=args.shard_size, models=args.models,
                             horizon=args.horizon)
    log.info("wrote %d CSV series and %s: %.0f s", args.series, configs / f"{PIPELINE}.yaml",
             time.monotonic() - started)
    broker = start_redis(processes, work, free_port())
    # registered before the start, so a half-started server is stopped too
    server = stack.exits.enter_context(embedded_postgres(work / "postgres"))
    create_databases(server, "airflow", "forecast")
    metadata = with_database(server, "airflow", scheme="postgresql+psycopg")  # psycopg 3 for SQLAlchemy
    forecast = with_database(server, "forecast")
    home = work / "airflow"
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps({"admin": args.password}))
    env = airflow_env(args, home, port=free_port(), broker=broker, metadata=metadata, forecast=forecast,
                      configs=configs)
    api = start_airflow(args, stack, env)
    runs = run_pipeline(args, api, stack, home)
    rows = modeling_instances(api, runs)
    report = {"runs": {d: {"run_id": r["dag_run_id"], "state": r["state"], "run_type": r["run_type"]}
                       for d, r in runs.items()},
              "instances": rows, "workers": sorted({r["hostname"] for r in rows if r["hostname"]}),
              "forecast_rows": forecast_rows(forecast), "series": args.series, "horizon": args.horizon,
              "models": args.models, "seconds": round(time.monotonic() - started, 1)}
    return report


def _on_sigterm(signum, frame):  # the same teardown as Ctrl-C
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--points", type=int, default=120, help="daily points per series")
    parser.add_argument("--partition-size", type=int, default=500)
    parser.add_argument("--shard-size", type=int, default=250, help="series per ingest task")
    parser.add_argument("--models", nargs="+", default=["naive", "seasonal_naive", "linear"])
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker")
    parser.add_argument("--parallelism", type=int, default=4, help="Airflow's [core] parallelism")
    parser.add_argument("--startup-timeout", type=float, default=240)
    parser.add_argument("--run-timeout", type=float, default=900, help="for ingest, train and predict together")
    parser.add_argument("--airflow-bin", type=Path, default=Path(sys.executable).parent / "airflow")
    parser.add_argument("--report", type=Path, help="also write the result as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data) for a look")
    args = parser.parse_args(argv)
    args.worker_names = [f"worker-{chr(ord('a') + i)}" for i in range(args.workers)]
    args.password = secrets.token_urlsafe(16)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # logs every pg_ctl call at INFO
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)

    started = time.monotonic()
    # not under pytest's or another 0700 tree: the embedded server's system user must reach its data folder
    work = Path(tempfile.mkdtemp(prefix="scale-out-check-"))
    # run as root, the server's system user must traverse this folder to reach work/postgres; it is ours,
    # so open it (traverse only) rather than have the embedded server refuse a private parent
    work.chmod(0o711)
    (work / "logs").mkdir()
    log.info("working in %s", work)
    stack = Stack(work=work, processes=Processes(work / "logs"))
    report: dict = {"work": str(work)}
    status = 1
    try:
        report.update(check(args, stack))
        print(host_table(report["instances"]))
        ok = len(report["workers"]) >= 2 and report["forecast_rows"] > 0
        if not ok:
            print("scale-out check failed: the mapped modeling tasks ran on fewer than 2 workers, or no forecast "
                  "was stored", file=sys.stderr)
        status = 0 if ok else 1
    except CheckFailed as exc:
        report["error"] = str(exc)
        print(f"scale-out check failed: {exc}\n{stack.processes.log_tails()}", file=sys.stderr)
    except KeyboardInterrupt:
        report["error"] = "interrupted"
        print("scale-out check interrupted; tearing down", file=sys.stderr)
        status = 130
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        log.exception("scale-out check failed")
        print(stack.processes.log_tails(), file=sys.stderr)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not cut it short
            signal.signal(signum, signal.SIG_IGN)
        stack.teardown(args.keep)
    report["total_seconds"] = round(time.monotonic() - started, 1)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    if "instances" in report:
        log.info("done in %.0f s", report["total_seconds"])
        print(f"workers used: {len(report['workers'])}")
        print(f"forecast rows: {report['forecast_rows']}")
    return status


if __name__ == "__main__":
    sys.exit(main())
