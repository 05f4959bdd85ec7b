-- The current data of every series, for analysts (the columns it had when migration 0001 made it).
CREATE VIEW current_observations AS
SELECT series_id, source, series_name, ts, value, version_no
FROM stg_observations_current;
