-- Views for dashboards and analysts, and the read-only role Grafana connects as.
-- The role may read these views and nothing else: no raw table, no write.

-- Actuals and the latest champion forecast of every series on one time axis.
CREATE VIEW v_forecast_vs_actual AS
SELECT s.name AS series_name, o.ts, o.value AS actual,
       NULL::double precision AS yhat, NULL::double precision AS lo_80, NULL::double precision AS hi_80,
       NULL::double precision AS lo_95, NULL::double precision AS hi_95, NULL::text AS model
FROM observations o JOIN series s USING (series_id)
WHERE o.valid_to IS NULL
UNION ALL
SELECT series_name, ts, NULL, yhat, lo_80, hi_80, lo_95, hi_95, model
FROM champion_forecasts;

-- Backtest accuracy per run, mode, model and series (series NULL = all series), over time.
CREATE VIEW v_backtest_accuracy AS
SELECT r.run_id, r.config_name, r.finished_at AS run_finished_at, m.mode, m.model,
       s.name AS series_name, m.metric, m.value
FROM backtest_metrics m
JOIN pipeline_runs r USING (run_id)
LEFT JOIN series s ON s.series_id = m.series_id
WHERE m.step IS NULL AND r.status = 'succeeded';

-- Freshness and revision activity per series.
CREATE VIEW v_series_freshness AS
SELECT s.name AS series_name, s.source, s.frequency, v.version_no AS current_version, v.row_count, v.last_ts,
       (SELECT max(ir.finished_at) FROM ingest_results res JOIN ingest_runs ir USING (ingest_run_id)
        WHERE res.series_id = s.series_id AND res.outcome <> 'failed') AS last_success_at,
       (SELECT count(*) FROM series_versions rv WHERE rv.series_id = s.series_id AND rv.reason = 'revised')
           AS n_revisions,
       (SELECT max(rv.created_at) FROM series_versions rv WHERE rv.series_id = s.series_id
        AND rv.reason = 'revised') AS last_revision_at,
       (SELECT count(*) FROM quarantine q WHERE q.series_id = s.series_id) AS n_quarantined
FROM series s
JOIN series_versions v ON v.series_id = s.series_id AND v.is_current;

-- Every version of every series: why and when it was made and what it changed.
CREATE VIEW v_revision_history AS
SELECT s.name AS series_name, s.source, v.version_no, v.reason, v.created_at, v.superseded_at, v.row_count,
       v.n_changed, v.n_added, v.n_removed, v.n_extended, v.ingest_run_id
FROM series_versions v JOIN series s USING (series_id);

-- Health of ingest and model runs on one timeline.
CREATE VIEW v_pipeline_run_health AS
SELECT 'ingest' AS kind, ingest_run_id AS run_id, config_name, triggered_by, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds, n_series, n_failed
FROM ingest_runs
UNION ALL
SELECT command, run_id, config_name, triggered_by, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision, NULL, NULL
FROM pipeline_runs;

-- The accuracy users actually got: archived forecasts scored against actuals that have arrived since.
CREATE VIEW v_realised_accuracy AS
SELECT f.run_id, m.name AS model, s.name AS series_name, count(*) AS n_points,
       avg(abs(o.value - f.yhat)) AS mae,
       avg(200 * abs(o.value - f.yhat) / nullif(abs(o.value) + abs(f.yhat), 0)) AS smape,
       avg(f.yhat - o.value) AS bias,
       min(f.created_at) AS forecast_made_at
FROM forecasts f
JOIN model_versions mv USING (model_version_id)
JOIN models m USING (model_id)
JOIN series s ON s.series_id = f.series_id
JOIN observations o ON o.series_id = f.series_id AND o.ts = f.ts AND o.valid_to IS NULL
GROUP BY f.run_id, m.name, s.name;

-- Every run of the forecasting DAGs as Airflow saw it, recorded by the plugin's listener.
CREATE TABLE airflow_dag_runs (
    dag_id       text NOT NULL,
    run_id       text NOT NULL,
    run_type     text,
    state        text NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    n_tasks      integer,
    n_success    integer,
    n_failed     integer,
    message      text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, run_id)
);

CREATE VIEW v_airflow_runs AS
SELECT dag_id, run_id, run_type, state, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds, n_tasks, n_success, n_failed,
       message
FROM airflow_dag_runs;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        -- no password here: set one out of band (ALTER ROLE grafana_reader PASSWORD ...) from a secret
        CREATE ROLE grafana_reader LOGIN;
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON v_forecast_vs_actual, v_backtest_accuracy, v_series_freshness, v_revision_history,
                v_pipeline_run_health, v_realised_accuracy, v_airflow_runs, champion_forecasts TO grafana_reader;
