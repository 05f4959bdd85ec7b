-- One status vocabulary for every run: succeeded / partial / failed / abandoned ('running' until one is recorded).
-- An ingest run with some failed series was 'failed' though it stored the others: it is 'partial' now, 'failed'
-- only when every series failed.
ALTER TABLE ingest_runs DROP CONSTRAINT ingest_runs_status_check;
ALTER TABLE ingest_runs ADD CONSTRAINT ingest_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'abandoned'));
UPDATE ingest_runs SET status = 'partial' WHERE status = 'failed' AND n_failed < n_series;

-- A pipeline run whose targets failed at download said 'succeeded': it modelled what was stored and said nothing of
-- the rest. The series of a run whose data is missing or stale are recorded here when the run is planned, and make
-- it 'partial': a target never stored (not modelled), or a series whose download failed in the run's own ingest
-- (modelled on its stored version, so its forecasts and models stay what they were).
CREATE TABLE run_data_issues (
    run_id       bigint NOT NULL REFERENCES pipeline_runs (run_id),
    source       text NOT NULL,
    series_name  text NOT NULL,
    role         text NOT NULL CHECK (role IN ('target', 'feature')),
    series_id    bigint REFERENCES series (series_id),       -- NULL: never stored
    modelled     boolean NOT NULL,                          -- false: left out of the run
    reason       text NOT NULL,
    PRIMARY KEY (run_id, source, series_name)
);

-- the newest ingest outcome of a series, which the pipeline pages show next to it
CREATE INDEX ingest_results_series ON ingest_results (source, series_name, ingest_run_id DESC);
