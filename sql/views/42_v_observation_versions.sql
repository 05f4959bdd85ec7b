-- Every stored observation row with the range of versions it belongs to, [valid_from, valid_to): version k of a
-- series is its rows with valid_from <= k AND (valid_to IS NULL OR valid_to > k); recorded_at lets an as-of read
-- leave out points appended later. The reader's way to any past version (the store's SQL functions read tables).
CREATE VIEW v_observation_versions AS
SELECT s.name AS series_name, s.source, o.ts, o.value, o.valid_from, o.valid_to, o.recorded_at
FROM observations o
JOIN series s USING (series_id);
