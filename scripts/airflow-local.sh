#!/usr/bin/env bash
# Airflow standalone (scheduler, dag-processor, api-server, triggerer) on this repository's dags/ and plugins/,
# with the forecast store on the embedded PostgreSQL (or $FORECASTING_DATABASE_URL). UI: http://127.0.0.1:8080
# (or $AIRFLOW__API__PORT; user admin, the generated password is printed and kept in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated). $AIRFLOW_BIN picks another install's airflow.
set -euo pipefail
cd "$(dirname "$0")/.."
AIRFLOW_BIN="${AIRFLOW_BIN:-$PWD/.venv/bin/airflow}"
export PATH="$(dirname "$AIRFLOW_BIN"):$PATH"  # standalone starts its components as plain `airflow`
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PWD/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# loopback unless asked otherwise: standalone's UI and API would otherwise listen on every interface
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
# task supervisors report to the API server: follow its port (the default assumes 8080)
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW__API__PORT/execution/}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"  # one worker process each; 32 by default
export FORECASTING_CONFIG_DIR="${FORECASTING_CONFIG_DIR:-$PWD/examples}"
"$AIRFLOW_BIN" db migrate
"$AIRFLOW_BIN" pools set google_trends 1 "pytrends rate limit"
"$AIRFLOW_BIN" pools set yahoo_finance 2 "Yahoo Finance scraping"
# standalone runs in a session of its own, so a stop reaches every component it started (scheduler,
# dag-processor, api-server, triggerer and their task processes) whichever way this script is stopped:
# a TERM or HUP to this script alone, or Ctrl+C. Non-interactive bash starts background jobs with SIGINT
# ignored, so signals are forwarded explicitly instead of relying on the terminal's process group.
standalone=""
stop_standalone() {
    trap - INT TERM HUP EXIT
    [ -n "$standalone" ] || return 0
    kill -TERM -- "-$standalone" 2>/dev/null || return 0
    for _ in $(seq 1 "${AIRFLOW_LOCAL_STOP_TIMEOUT:-30}"); do
        kill -0 -- "-$standalone" 2>/dev/null || return 0
        sleep 1
    done
    echo "airflow-local: components still running after ${AIRFLOW_LOCAL_STOP_TIMEOUT:-30} s; killing them" >&2
    kill -KILL -- "-$standalone" 2>/dev/null || true
}
# traps first: a stop that arrives while standalone is starting must still reach it
trap 'stop_standalone; exit 130' INT
trap 'stop_standalone; exit 143' TERM HUP
trap stop_standalone EXIT
setsid "$AIRFLOW_BIN" standalone &
standalone=$!
status=0
wait "$standalone" || status=$?
exit "$status"
