-- Nothing half-done is left behind. A step whose process died (kill -9, OOM) stayed 'running' for good, though its
-- run was marked abandoned: a step is now 'abandoned' with its run (or, in Airflow, when the run is published after
-- its task died). Steps of runs that already ended are settled here once.
ALTER TABLE run_steps DROP CONSTRAINT run_steps_status_check;
ALTER TABLE run_steps ADD CONSTRAINT run_steps_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned'));

UPDATE run_steps st
SET status = 'abandoned', finished_at = coalesce(r.finished_at, now()),
    error = 'abandoned: the step never recorded its outcome (its process ended with run ' || r.run_id || ', '
            || r.status || ')'
FROM pipeline_runs r
WHERE r.run_id = st.run_id AND st.status = 'running' AND r.status <> 'running';

-- partition_models.reused said whether the training step found the version before fitting, so two runs training
-- one fingerprint at once both said false, and a retried step called its own run's version reused. A version is
-- reused by a run exactly when another run registered it (model_versions.run_id): recorded so from now on, and here.
UPDATE partition_models p
SET reused = (v.run_id <> p.run_id)
FROM model_versions v
WHERE v.model_version_id = p.model_version_id AND p.reused IS DISTINCT FROM (v.run_id <> p.run_id);
