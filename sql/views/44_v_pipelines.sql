-- Every pipeline (config) with its series counts, interval levels and newest model and ingest runs.
CREATE VIEW v_pipelines AS
WITH names AS (
    SELECT config_name FROM pipeline_runs
    UNION
    SELECT config_name FROM ingest_runs WHERE config_name IS NOT NULL
), newest_run AS (
    SELECT DISTINCT ON (config_name) config_name, run_id, command, status, started_at, finished_at, config
    FROM pipeline_runs
    ORDER BY config_name, run_id DESC
), newest_ingest AS (
    SELECT DISTINCT ON (config_name) config_name, ingest_run_id, status, finished_at
    FROM ingest_runs
    WHERE config_name IS NOT NULL
    ORDER BY config_name, ingest_run_id DESC
), counts AS (
    SELECT pipeline, count(*) AS n_series, count(*) FILTER (WHERE role = 'target') AS n_targets
    FROM stg_pipeline_series
    GROUP BY pipeline
)
SELECT n.config_name AS pipeline, r.config->>'description' AS description,
       coalesce(c.n_series, 0) AS n_series, coalesce(c.n_targets, 0) AS n_targets,
       coalesce(r.config->'prediction'->'levels', '[80, 95]'::jsonb) AS interval_levels,
       r.run_id AS last_run_id, r.command AS last_run_command, r.status AS last_run_status,
       r.started_at AS last_run_started_at, r.finished_at AS last_run_finished_at,
       i.ingest_run_id AS last_ingest_run_id, i.status AS last_ingest_status, i.finished_at AS last_ingest_finished_at
FROM names n
LEFT JOIN newest_run r ON r.config_name = n.config_name
LEFT JOIN newest_ingest i ON i.config_name = n.config_name
LEFT JOIN counts c ON c.pipeline = n.config_name;

COMMENT ON COLUMN v_pipelines.interval_levels IS 'interval levels of the newest run''s config, in percent';
