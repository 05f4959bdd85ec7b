-- A run read the current data at each of its steps, so a revision ingested between two steps (or two mapped
-- Airflow tasks minutes apart) gave them different data. Planning now pins the run's snapshot in
-- pipeline_run_data: the version of every target and feature series and how far that version reached then.
-- A current version still grows by extension after the pin, but only after its last timestamp, so the rows of the
-- pinned version up to last_ts are exactly what planning saw. data_as_of is the instant the snapshot was taken.
ALTER TABLE pipeline_runs ADD COLUMN data_as_of timestamptz;   -- NULL: planned before runs pinned their data
ALTER TABLE pipeline_run_data ADD COLUMN last_ts timestamp;    -- the pinned version's last timestamp at the pin
