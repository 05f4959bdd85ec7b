"""Browser check of the Airflow UI: start ``scripts/airflow-local.sh`` (Airflow standalone on this repository's
DAGs and plugin), log in headless in Debian's chromium, unpause the train and predict DAGs, trigger the ingest DAG
from its trigger form, wait until ingest, train (on the data Asset) and predict (on the model Asset) succeed, and
save screenshots of the DAG list, the runs and the plugin's Grafana links. Then it opens the plugin's "Forecasts"
view inside the Airflow UI, screenshots its pages, and counts the chart's drawn points and bands on the series page
against the plugin's JSON API (``--docs DIR`` also copies those screenshots there, for the README).

    .venv/bin/python scripts/browser_check.py --out screenshots/

Needs ``/usr/bin/chromium`` (``scripts/install-test-tools.sh``); Playwright drives it, no browser is downloaded.
The forecast store is ``--database-url`` (or ``$FORECASTING_DATABASE_URL``), else a scratch database on the
embedded server, dropped at the end: on a store whose models are already current for its data, settings and
code (after a CLI run), the ingest would emit no data Asset and no training run would follow. Prints and writes
``report.json`` in the output folder; exits non-zero when any step fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [  # the machine has no internet: keep chromium from calling home
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]
FINAL_STATES = {"success", "failed", "canceled"}
log = logging.getLogger("browser_check")


@dataclass
class Report:
    base_url: str
    screenshots: dict[str, str] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    dag_ids: list[str] = field(default_factory=list)
    grafana_links: list[str] = field(default_factory=list)
    forecasts: dict = field(default_factory=dict)
    ok: bool = False
    error: str | None = None


class AirflowStandalone:
    """``scripts/airflow-local.sh`` in its own process group, so stopping it stops every Airflow component."""

    def __init__(self, home: Path, port: int, config_dir: Path, airflow_bin: Path, database_url: str | None):
        self.home, self.port, self.base_url = home, port, f"http://127.0.0.1:{port}"
        self.log_path = home / "standalone.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update({"AIRFLOW_HOME": str(home), "AIRFLOW_BIN": str(airflow_bin),
                         "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
                         "FORECASTING_CONFIG_DIR": str(config_dir)})
        if database_url:
            self.env["FORECASTING_DATABASE_URL"] = database_url
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> AirflowStandalone:
        self.home.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("wb")
        self.process = subprocess.Popen(["bash", str(ROOT / "scripts" / "airflow-local.sh")], env=self.env,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # TERM, not Ctrl+C: a process started from a non-interactive shell's background job inherits SIGINT
        # ignored, and the script could then not trap it; on TERM it stops every component it started
        components = psutil.Process(self.process.pid).children(recursive=True)
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for component in components:  # whatever outlived the script (it was killed, or a component hung)
            with contextlib.suppress(psutil.NoSuchProcess):
                component.kill()

    def password(self, timeout: float) -> str:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        self._wait(lambda: path.exists() and path.stat().st_size > 0, timeout, f"{path} to be written")
        return json.loads(path.read_text())["admin"]

    def wait_until_serving(self, timeout: float) -> None:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        self._wait(healthy, timeout, "the API server")

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({self.process.returncode}); see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}; see {self.log_path}")
            time.sleep(1)


class AirflowApi:
    """The REST API with the same login as the browser: used only to watch run states."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        token = self._call("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        self.token = token["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def runs(self, dag_id: str) -> list[dict]:
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=20")["dag_runs"]

    def wait_for_run(self, dag_id: str, timeout: float, run_id: str | None = None) -> dict:
        """The given run (or the first run of the DAG) once it reaches a final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs(dag_id) if run_id is None or r["dag_run_id"] == run_id]
            done = [r for r in runs if r["state"] in FINAL_STATES]
            if done:
                return done[-1]
            time.sleep(2)
        hint = "" if run_id else (" (it runs only once the upstream DAG emitted its Asset: ingest emits it when some "
                                  "partition lacks current models)")
        raise TimeoutError(f"{dag_id}: no finished run{' ' + run_id if run_id else ''} after {timeout:.0f} s{hint}")


@contextmanager
def scratch_database(keep: bool) -> Iterator[str]:
    """A new, empty database on the embedded server (the schema is applied by the first task that connects)."""
    import psycopg
    from psycopg import sql

    from forecasting.db.embedded import embedded_server_url

    server = embedded_server_url()
    name = f"browser_check_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urllib.parse.urlsplit(server)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
    finally:
        if keep:
            log.info("kept the forecast database %s", name)
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_check(args: argparse.Namespace, report: Report, standalone: AirflowStandalone) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    out, base, name = args.out, standalone.base_url, args.pipeline
    ingest, train, predict = (f"forecasting_{name}_{kind}" for kind in ("ingest", "train", "predict"))
    password = standalone.password(args.startup_timeout)
    standalone.wait_until_serving(args.startup_timeout)
    api = AirflowApi(base, "admin", password)
    log.info("Airflow is serving at %s", base)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)

        def shot(key: str) -> None:
            path = out / f"{len(report.screenshots) + 1:02d}-{key}.png"
            page.screenshot(path=str(path), full_page=True)
            report.screenshots[key] = str(path)
            log.info("saved %s", path)

        page.goto(base + "/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_test_id("nav-dags-link").wait_for()
        log.info("logged in")

        page.goto(base + "/dags")
        deadline = time.monotonic() + args.startup_timeout  # the dag-processor parses the file after start-up
        while True:
            try:  # the list renders after the page's load event, once its API call answers: wait for it
                page.get_by_test_id("dag-card").nth(2).wait_for(timeout=5_000)
                break
            except PlaywrightTimeoutError:
                if time.monotonic() > deadline:
                    shot("dag-list-timeout")
                    raise TimeoutError(f"the DAG list never showed the {name} DAGs; see {standalone.log_path}") \
                        from None
                page.reload()
        report.dag_ids = sorted(page.get_by_test_id("dag-id").all_inner_texts())
        shot("dag-list")

        for dag_id in (train, predict):  # asset-scheduled DAGs run only when unpaused
            page.get_by_test_id("dag-card").filter(has_text=dag_id).get_by_test_id("toggle-pause").click()
        page.wait_for_timeout(1000)

        page.goto(f"{base}/dags/{ingest}")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Run Parameters").wait_for()
        dialog.get_by_role("button", name="Trigger").click()
        page.wait_for_url(f"**/dags/{ingest}/runs/**")
        run_id = urllib.parse.unquote(page.url.rsplit("/runs/", 1)[1])
        log.info("triggered %s run %s from the UI", ingest, run_id)

        for dag_id, wanted in ((ingest, run_id), (train, None), (predict, None)):
            run = api.wait_for_run(dag_id, args.run_timeout, wanted)
            report.runs[dag_id] = {"run_id": run["dag_run_id"], "state": run["state"], "run_type": run["run_type"]}
            log.info("%s: %s %s", dag_id, run["dag_run_id"], run["state"])
            if run["state"] != "success":
                raise RuntimeError(f"{dag_id} run {run['dag_run_id']} ended {run['state']}")

        for dag_id in (ingest, predict):
            run = report.runs[dag_id]["run_id"]
            page.goto(f"{base}/dags/{dag_id}/runs/{urllib.parse.quote(run, safe='')}")
            page.get_by_text("Success").first.wait_for()
            page.wait_for_load_state("networkidle")
            shot(f"{dag_id.rsplit('_', 1)[1]}-run")

        page.goto(base + "/dags")
        page.get_by_test_id("dag-card").first.wait_for()
        page.wait_for_load_state("networkidle")
        shot("dag-list-after-runs")

        page.get_by_role("button", name="Plugins").click()
        page.get_by_role("menuitem", name="Forecasting").hover()
        page.get_by_role("menuitem", name="Pipeline health").wait_for()
        report.grafana_links = [a.get_attribute("href") or "" for a in page.locator("a[href*='/d/forecasting-']").all()]
        shot("grafana-links")
        page.keyboard.press("Escape")
        check_forecasts_view(page, api, base, report, shot)
        browser.close()


def check_forecasts_view(page, api: AirflowApi, base: str, report: Report, shot) -> None:
    """The plugin's Forecasts entry in the Airflow UI: its pages load in the UI's frame, behind Airflow's login,
    and the series page's chart draws as many points and bands as the plugin's JSON API returns."""
    page.get_by_role("link", name="Forecasts").first.click()
    page.wait_for_url("**/plugin/forecasts**")
    frame = page.frame_locator("iframe").first
    frame.locator("section.pipeline").first.wait_for()
    first_link = frame.locator("table.series a").first
    series = first_link.inner_text()
    page.wait_for_load_state("networkidle")
    shot("forecasts-pipelines")

    first_link.click()
    frame.locator("svg.forecast-chart").wait_for()
    frame.locator("table.leaderboard").wait_for()
    page.wait_for_load_state("networkidle")
    shot("forecasts-series")
    chart = frame.locator("svg.forecast-chart")
    drawn = {"actual_points": chart.locator("circle.actual-point").count(),
             "forecast_points": chart.locator("circle.forecast-point").count(),
             "band_levels": [int(b.get_attribute("data-level")) for b in chart.locator("path.band").all()]}
    quoted = urllib.parse.quote(series, safe="")
    history = api.get(f"/forecasts/api/v1/series/{quoted}")
    forecast = api.get(f"/forecasts/api/v1/series/{quoted}/forecast")
    report.forecasts = {"series": series, "url": page.url, "drawn": drawn,
                        "api": {"actual_points": history["n_points"], "forecast_points": len(forecast["points"]),
                                "levels": forecast["levels"]}}
    log.info("forecasts view: %s", report.forecasts)

    frame.get_by_role("link", name="Runs").first.click()
    frame.locator("table.runs").wait_for()
    page.wait_for_load_state("networkidle")
    shot("forecasts-runs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="folder for screenshots + report")
    parser.add_argument("--config-dir", type=Path, default=ROOT / "examples")
    parser.add_argument("--pipeline", default="demo", help="name of the pipeline config to run")
    parser.add_argument("--database-url", default=os.environ.get("FORECASTING_DATABASE_URL"),
                        help="forecast store (default: a scratch database on the embedded server)")
    parser.add_argument("--keep-database", action="store_true", help="keep the scratch database for a look")
    parser.add_argument("--docs", type=Path, help="also copy the Forecasts screenshots here (docs/images)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--airflow-bin", type=Path, default=Path(sys.executable).parent / "airflow")
    parser.add_argument("--port", type=int, default=0, help="API server port (0: a free one)")
    parser.add_argument("--startup-timeout", type=float, default=180)
    parser.add_argument("--run-timeout", type=float, default=600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()

    store = nullcontext(args.database_url) if args.database_url else scratch_database(args.keep_database)
    with store as database_url, tempfile.TemporaryDirectory(prefix="airflow-browser-check-") as home:
        standalone = AirflowStandalone(Path(home), port, args.config_dir.resolve(), args.airflow_bin, database_url)
        report = Report(base_url=standalone.base_url)
        try:
            with standalone:
                run_check(args, report, standalone)
            report.ok = True
        except Exception as exc:
            log.exception("browser check failed")
            report.error = f"{type(exc).__name__}: {exc}"
        finally:
            (args.out / "airflow-standalone.log").write_bytes(standalone.log_path.read_bytes()
                                                              if standalone.log_path.exists() else b"")
    if args.docs and report.ok:
        args.docs.mkdir(parents=True, exist_ok=True)
        for key, path in report.screenshots.items():
            if key.startswith("forecasts-"):
                shutil.copyfile(path, args.docs / f"{key}.png")
    (args.out / "report.json").write_text(json.dumps(report.__dict__, indent=2))
    print(json.dumps(report.__dict__, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
