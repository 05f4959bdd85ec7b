"""docker-compose.yaml: the services, health checks and secrets a production-like stack needs.

No Docker engine runs on the development machines, so the stack is never started here: the file is checked
structurally, and resolved by `docker compose config` (Compose v2) or else Debian's `docker-compose` (v1.29,
installed by scripts/install-test-tools.sh), which interpolate `.env.example` without an engine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
AIRFLOW = [name for name in SERVICES if name.startswith("airflow-")]
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::-[^}]*)?\}")  # $${X} is the container's own


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
    assert secrets == {"${AIRFLOW_JWT_SECRET}"}
    for name in AIRFLOW:
        assert _env(name)["AIRFLOW_CONN_FORECASTING_DB"].startswith("postgresql://forecasting:${")


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
