-- A run whose process died (kill -9, OOM, a lost machine) stayed 'running' for ever. Runs owned by one
-- process (every ingest run, CLI pipeline runs) record that process; the next run on the same host marks
-- those whose process is gone as 'abandoned', with the reason. Airflow pipeline runs span many task
-- processes and have no owner process: their publish task always settles them.

ALTER TABLE pipeline_runs DROP CONSTRAINT pipeline_runs_status_check;
ALTER TABLE pipeline_runs ADD CONSTRAINT pipeline_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'abandoned'));
ALTER TABLE pipeline_runs ADD COLUMN owner_host text, ADD COLUMN owner_pid integer;

ALTER TABLE ingest_runs DROP CONSTRAINT ingest_runs_status_check;
ALTER TABLE ingest_runs ADD CONSTRAINT ingest_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned'));
ALTER TABLE ingest_runs ADD COLUMN owner_host text, ADD COLUMN owner_pid integer, ADD COLUMN error text;
