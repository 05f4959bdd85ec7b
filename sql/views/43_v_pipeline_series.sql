-- The series of every pipeline with their role, frequency, versions and freshness, and the outcome of the newest
-- ingest that reached each: a series whose download failed is listed with the error, stored (versions, points) or
-- not (current_version NULL).
CREATE VIEW v_pipeline_series AS
SELECT p.pipeline, p.series_name, p.source, p.role, p.frequency, p.unit,
       f.current_version, (SELECT count(*) FROM series_versions a WHERE a.series_id = p.series_id) AS n_versions,
       f.row_count AS n_points, f.last_ts, f.last_success_at, f.n_revisions, f.last_revision_at, f.n_quarantined,
       li.ingest_run_id AS last_ingest_run_id, li.outcome AS last_ingest_outcome, li.error AS last_ingest_error
FROM stg_pipeline_series p
LEFT JOIN v_series_freshness f ON f.series_name = p.series_name AND f.source = p.source
LEFT JOIN LATERAL (
    SELECT r.ingest_run_id, r.outcome, r.error
    FROM ingest_results r
    WHERE r.source = p.source AND r.series_name = p.series_name
    ORDER BY r.ingest_run_id DESC
    LIMIT 1
) li ON true;

COMMENT ON COLUMN v_pipeline_series.last_ts IS 'timestamp of the newest observation';
COMMENT ON COLUMN v_pipeline_series.last_success_at IS 'when an ingest last reached the source for this series';
COMMENT ON COLUMN v_pipeline_series.last_ingest_outcome IS
    'outcome of the newest ingest of the series: initial, unchanged, extended, revised, quarantined or failed';
