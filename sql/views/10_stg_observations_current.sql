-- Staging: the current value of every stored series at every timestamp, with the series' identity. The other
-- views read current data through this one, never from the observations table.
CREATE VIEW stg_observations_current AS
SELECT
    -- ids
    s.series_id, s.source, s.name AS series_name, s.config_name,
    -- description
    s.frequency, s.unit, v.version_no,
    -- measures
    o.ts, o.value
FROM observations o
JOIN series s USING (series_id)
JOIN series_versions v ON v.series_id = o.series_id AND v.is_current
WHERE o.valid_to IS NULL;

COMMENT ON COLUMN stg_observations_current.ts IS 'timestamp of the observation, naive UTC';
COMMENT ON COLUMN stg_observations_current.value IS 'observed value, in the series'' unit';
