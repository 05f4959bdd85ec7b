-- The series of every pipeline with their role, frequency, versions and freshness.
CREATE VIEW v_pipeline_series AS
SELECT p.pipeline, p.series_name, p.source, p.role, p.frequency, p.unit,
       f.current_version, (SELECT count(*) FROM series_versions a WHERE a.series_id = p.series_id) AS n_versions,
       f.row_count AS n_points, f.last_ts, f.last_success_at, f.n_revisions, f.last_revision_at, f.n_quarantined
FROM stg_pipeline_series p
JOIN v_series_freshness f ON f.series_name = p.series_name AND f.source = p.source;

COMMENT ON COLUMN v_pipeline_series.last_ts IS 'timestamp of the newest observation';
COMMENT ON COLUMN v_pipeline_series.last_success_at IS 'when an ingest last reached the source for this series';
