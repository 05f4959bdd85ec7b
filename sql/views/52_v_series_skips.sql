-- What each run could not model, by name, for analysts and dashboards.
CREATE VIEW v_series_skips AS
SELECT k.run_id, r.config_name, k.step, k.partition_key, s.name AS series_name, k.model, k.reason, k.created_at
FROM series_skips k
JOIN pipeline_runs r USING (run_id)
JOIN series s USING (series_id);
