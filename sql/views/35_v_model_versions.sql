-- Every registered model version: the run that registered it (fitted and stored it) and the runs that reused it
-- (their training found the same settings, data versions and code already registered, or a concurrent run
-- registered it first), with the data versions it was trained on.
CREATE VIEW v_model_versions AS
SELECT v.model_version_id, m.config_name AS pipeline, m.name AS model, m.frequency, m.partition_key,
       v.run_id AS registered_by_run_id, v.created_at, v.training_start, v.training_end, v.code_version,
       coalesce((SELECT array_agg(DISTINCT p.run_id ORDER BY p.run_id) FROM partition_models p
                 WHERE p.model_version_id = v.model_version_id AND p.reused), '{}') AS reused_by_run_ids,
       (SELECT array_agg(d.series_version_id ORDER BY d.series_version_id) FROM model_version_data d
        WHERE d.model_version_id = v.model_version_id) AS series_version_ids
FROM model_versions v
JOIN models m ON m.model_id = v.model_id;

COMMENT ON COLUMN v_model_versions.reused_by_run_ids IS 'runs that used this version without registering it';
