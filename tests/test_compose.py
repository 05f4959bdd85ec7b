"""docker-compose.yaml: the services, health checks and secrets a production-like stack needs.

No Docker engine runs on the development machines, so the stack is never started here: the file is checked
structurally, and resolved by `docker compose config` (Compose v2) or else Debian's `docker-compose` (v1.29,
installed by scripts/install-test-tools.sh), which interpolate `.env.example` without an engine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import as_in_a_terminal

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
AIRFLOW = [name for name in SERVICES if name.startswith("airflow-")]
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::[-?][^}]*)?\}")  # $${X} is the container's own


def _env(service: str) -> dict:
    return SERVICES[service].get("environment", {})


def test_all_services_are_there():
    assert {
        "postgres",
        "grafana",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= set(SERVICES)
    assert SERVICES["redis"]["profiles"] == ["celery"] and SERVICES["airflow-worker"]["profiles"] == ["celery"]
    assert _env("airflow-worker")["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert _env("airflow-scheduler")["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"


def test_long_running_services_have_health_checks_and_wait_for_init():
    for name, service in SERVICES.items():
        if name == "airflow-init":
            continue
        assert "healthcheck" in service, name
        if name.startswith("airflow-"):
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_airflow_component_shares_one_jwt_secret_and_the_forecast_connection():
    secrets = {_env(name)["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW}
    assert secrets == {"${AIRFLOW_JWT_SECRET:?set AIRFLOW_JWT_SECRET in .env (see .env.example)}"}
    for name in AIRFLOW:
        assert _env(name)["AIRFLOW_CONN_FORECASTING_DB"].startswith("postgresql://forecasting:${")
        # the Forecasts web app in the API server reads as the read-only role
        assert _env(name)["FORECASTING_WEB_DATABASE_URL"].startswith("postgresql://grafana_reader:${GRAFANA_READER_")


def test_ui_login_is_real_not_all_admins():
    env = _env("airflow-apiserver")
    assert "SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in " ".join(env)
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,viewer:viewer"
    assert _env("grafana")["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_no_secret_is_written_in_the_file_and_every_variable_is_documented():
    text = (ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set(VARIABLE.findall(text)) - {"AIRFLOW_EXECUTOR", "GRAFANA_URL"}  # both have defaults
    assert used <= documented, used - documented
    for service in SERVICES.values():
        for key, value in service.get("environment", {}).items():
            if re.search("PASSWORD|SECRET|FERNET", key) and not key.endswith("_FILE"):  # a path, not a secret
                assert VARIABLE.fullmatch(str(value)), f"{key} must come from the environment"


def test_grafana_mounts_the_provisioning_and_dashboards():
    volumes = SERVICES["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    for path in ("grafana/provisioning/datasources/forecasting.yaml", "docker/Dockerfile", "docker/postgres-init.sh"):
        assert (ROOT / path).is_file(), path


def _compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_docker_compose_config_resolves_the_file_with_the_example_env():
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Compose client (scripts/install-test-tools.sh installs Debian's docker-compose)")
    result = subprocess.run([*command, "--env-file", ".env.example", "--profile", "celery", "config"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == set(SERVICES)
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
    secrets = {resolved["services"][name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW}
    assert secrets == {example["AIRFLOW_JWT_SECRET"]}  # interpolated from the env file, one for all
    assert "${" not in result.stdout.replace("$${", "")
    for name in AIRFLOW:
        depends = resolved["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"


def test_every_secret_is_required_and_independent():
    text = (ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
    for name in ("POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD", "FORECASTING_DB_PASSWORD", "GRAFANA_READER_PASSWORD",
                 "GRAFANA_ADMIN_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_VIEWER_PASSWORD", "AIRFLOW_JWT_SECRET",
                 "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY"):
        uses = re.findall(r"(?<!\$)\$\{" + name + r"(:\?[^}]*|:-[^}]*)?\}", text)
        assert uses and all(u.startswith(":?") for u in uses), f"{name} must be required (${{{name}:?...}})"
    assert "-viewer" not in text  # the viewer's password is its own, not derived from the admin's


def test_compose_refuses_to_start_without_a_secret(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Compose client (scripts/install-test-tools.sh installs Debian's docker-compose)")
    env = [line for line in (ROOT / ".env.example").read_text().splitlines() if not line.startswith("AIRFLOW_FERNET")]
    (tmp_path / ".env").write_text("\n".join(env) + "\nAIRFLOW_FERNET_KEY=\n", encoding="utf-8")
    result = subprocess.run([*command, "--env-file", str(tmp_path / ".env"), "config"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "set AIRFLOW_FERNET_KEY in .env" in result.stdout + result.stderr


def test_the_init_script_passes_passwords_as_quoted_literals(tmp_path):
    import psycopg
    from conftest import with_dbname

    from forecasting.db.embedded import embedded_server_url, stop_embedded_server
    from forecasting.db.migrations import WRITE_FUNCTIONS

    data_dir = Path(__import__("tempfile").mkdtemp(prefix="forecasting-init-"))  # not under pytest's 0700 root
    try:
        url = embedded_server_url(data_dir)
        nasty = "it's\"; DROP ROLE postgres; --"
        env = {"PATH": "/usr/bin:/bin", "POSTGRES_USER": "postgres", "PGHOST": str(data_dir / "pgdata"),
               "PGDATABASE": "postgres", "AIRFLOW_DB_PASSWORD": nasty, "FORECASTING_DB_PASSWORD": "f$(id)`x`",
               "GRAFANA_READER_PASSWORD": "r\\:'x'"}
        result = subprocess.run(["bash", str(ROOT / "docker" / "postgres-init.sh")], env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        with psycopg.connect(url) as conn:
            roles = dict(conn.execute("SELECT rolname, rolpassword IS NOT NULL FROM pg_authid WHERE rolname IN "
                                      "('airflow', 'forecasting', 'grafana_reader', 'postgres')").fetchall())
            databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        assert roles == {"airflow": True, "forecasting": True, "grafana_reader": True, "postgres": False}
        assert {"airflow", "forecasting"} <= databases
        # the reader writes nowhere: no other database to connect to (temporary tables and large objects there)
        for other in ("postgres", "template1", "airflow"):
            with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{other}"'):
                psycopg.connect(with_dbname(url, other), user="grafana_reader").close()
        # and in the store no function that writes without a table privilege, the same ones the upgrade revokes
        with psycopg.connect(with_dbname(url, "forecasting")) as conn:
            open_to = dict(conn.execute(
                "SELECT p.proname, bool_or(has_function_privilege('public', p.oid, 'EXECUTE')) "
                "OR bool_or(NOT has_function_privilege('forecasting', p.oid, 'EXECUTE')) FROM pg_proc p "
                "WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY(%s) GROUP BY 1",
                (list(WRITE_FUNCTIONS),)).fetchall())
        assert open_to == dict.fromkeys(WRITE_FUNCTIONS, False)
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_local_airflow_script_binds_loopback_unless_told_otherwise(tmp_path):
    stub = tmp_path / "airflow"  # stands in for airflow: records what standalone would bind
    stub.write_text('#!/bin/sh\n[ "$1" = standalone ] && echo "host=$AIRFLOW__API__HOST port=$AIRFLOW__API__PORT"\n'
                    "exit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_BIN": str(stub), "AIRFLOW_HOME": str(tmp_path / "home")}
    script = str(ROOT / "scripts" / "airflow-local.sh")
    default = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=60)
    assert default.stdout.strip() == "host=127.0.0.1 port=8080", default.stderr
    chosen = subprocess.run(["bash", script], env={**env, "AIRFLOW__API__HOST": "0.0.0.0"}, capture_output=True,
                            text=True, timeout=60)
    assert chosen.stdout.strip() == "host=0.0.0.0 port=8080"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child the stub never reaped shows as a zombie until init collects it
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_local_airflow_script_stops_every_component(tmp_path, stop_signal):
    pids = tmp_path / "pids"
    stub = tmp_path / "airflow"  # stands in for standalone: starts two long-lived components, as it does
    stub.write_text('#!/bin/sh\n[ "$1" = standalone ] || exit 0\n'
                    f'sleep 300 & echo $! >> {pids}\nsleep 300 & echo $! >> {pids}\nwait\n', encoding="utf-8")
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_BIN": str(stub), "AIRFLOW_HOME": str(tmp_path / "home"),
           "AIRFLOW_LOCAL_STOP_TIMEOUT": "10"}
    script = subprocess.Popen(["bash", str(ROOT / "scripts" / "airflow-local.sh")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=as_in_a_terminal)
    try:
        deadline = time.monotonic() + 30
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert time.monotonic() < deadline and script.poll() is None, "the stub's components never started"
            time.sleep(0.1)
        components = [int(pid) for pid in pids.read_text().split()]
        assert all(_pid_alive(pid) for pid in components)
        script.send_signal(stop_signal)  # to the script alone, as a service manager or `kill` would
        script.wait(timeout=20)
        deadline = time.monotonic() + 10
        while any(_pid_alive(pid) for pid in components) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in components if _pid_alive(pid)], "components outlived the script"
        assert script.returncode == 128 + stop_signal
    finally:
        if script.poll() is None:
            script.kill()
        for pid in [int(p) for p in pids.read_text().split()] if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
