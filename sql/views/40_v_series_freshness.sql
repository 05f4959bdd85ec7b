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
