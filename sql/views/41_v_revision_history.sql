-- Every version of every series: why and when it was made and what it changed.
CREATE VIEW v_revision_history AS
SELECT s.name AS series_name, s.source, v.version_no, v.reason, v.created_at, v.superseded_at, v.row_count,
       v.n_changed, v.n_added, v.n_removed, v.n_extended, v.ingest_run_id
FROM series_versions v JOIN series s USING (series_id);
