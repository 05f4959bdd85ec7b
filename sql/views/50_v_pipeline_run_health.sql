-- Health of ingest and model runs on one timeline.
CREATE VIEW v_pipeline_run_health AS
SELECT 'ingest' AS kind, ingest_run_id AS run_id, config_name, triggered_by, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds, n_series, n_failed
FROM ingest_runs
UNION ALL
SELECT command, run_id, config_name, triggered_by, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision, NULL, NULL
FROM pipeline_runs;
