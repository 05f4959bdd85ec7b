#!/usr/bin/env bash
# First start of the postgres container: one database for Airflow's metadata, one for the forecast store,
# each with its own owner, and the dashboard role's password (the role itself comes from the migrations).
# Passwords reach SQL as psql variables, quoted by psql (:'name'), never pasted into the statement text.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
    -v airflow_password="$AIRFLOW_DB_PASSWORD" \
    -v forecasting_password="$FORECASTING_DB_PASSWORD" \
    -v reader_password="$GRAFANA_READER_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE forecasting LOGIN PASSWORD :'forecasting_password';
CREATE DATABASE forecasting OWNER forecasting;
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
SQL
