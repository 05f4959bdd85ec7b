#!/usr/bin/env bash
# First start of the postgres container: one database for Airflow's metadata, one for the forecast store,
# each with its own owner, and the dashboard role's password (its grants come from the migrations), with no way
# for the dashboard role to write anything.
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
-- The reader may write nowhere. PUBLIC may connect to every database by default and create temporary tables and
-- large objects there (template1's would be copied into every database created later): only owners and
-- superusers connect to the others.
REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1, airflow FROM PUBLIC;
-- In the store, the functions that write without a table privilege (large objects, WAL messages) are the owner's
-- only: forecasting.db.migrations.WRITE_FUNCTIONS, which `forecasting db upgrade` cannot revoke as the store's
-- owner (they belong to the superuser); it revokes TEMPORARY itself.
\connect forecasting
DO $$
DECLARE
    f text;
BEGIN
    FOR f IN SELECT format('pg_catalog.%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid))
             FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
             AND p.proname IN ('lo_create', 'lo_creat', 'lo_from_bytea', 'lo_import', 'lo_put', 'lowrite',
                               'lo_truncate', 'lo_truncate64', 'lo_unlink', 'pg_logical_emit_message') LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO forecasting', f);
    END LOOP;
END $$;
SQL
