#!/usr/bin/env bash
# First start of the postgres container: one database for Airflow's metadata, one for the forecast store,
# each with its own owner, and the dashboard role's password (the role itself comes from the migrations).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE airflow LOGIN PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE forecasting LOGIN PASSWORD '${FORECASTING_DB_PASSWORD}';
CREATE DATABASE forecasting OWNER forecasting;
CREATE ROLE grafana_reader LOGIN PASSWORD '${GRAFANA_READER_PASSWORD}';
SQL
