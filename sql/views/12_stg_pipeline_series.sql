-- Staging: the series of every pipeline (config) and their role, from the config of the pipeline's newest
-- model run, stored or not (series_id NULL: no ingest has stored it, e.g. its download failed); series stored by a
-- config that never had a model run are listed with an unknown (NULL) role.
CREATE VIEW stg_pipeline_series AS
WITH newest_run AS (
    SELECT DISTINCT ON (config_name) config_name, run_id, config
    FROM pipeline_runs
    ORDER BY config_name, run_id DESC
), configured AS (
    SELECT n.config_name AS pipeline, e->>'source' AS source, e->>'name' AS series_name,
           coalesce(e->>'role', 'target') AS role
    FROM newest_run n, jsonb_array_elements(n.config->'series') AS e
)
SELECT c.pipeline, s.series_id, c.source, c.series_name, c.role, s.frequency, s.unit
FROM configured c
LEFT JOIN series s ON s.source = c.source AND s.name = c.series_name
UNION ALL
SELECT s.config_name, s.series_id, s.source, s.name, NULL, s.frequency, s.unit
FROM series s
WHERE s.config_name IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.config_name = s.config_name);
