-- Every model run with what it produced and what it could not do. status: running, then succeeded, partial, failed
-- or abandoned (forecasting.outcomes); n_data_issues: series whose data was missing or stale (a target that failed at
-- download), each of which makes the run partial.
CREATE VIEW v_runs AS
SELECT r.run_id, r.config_name AS pipeline, r.command, r.triggered_by, r.status, r.started_at, r.finished_at,
       extract(epoch FROM r.finished_at - r.started_at)::double precision AS seconds,
       (SELECT count(DISTINCT f.series_id) FROM forecasts f WHERE f.run_id = r.run_id) AS n_forecast_series,
       (SELECT count(DISTINCT k.series_id) FROM series_skips k WHERE k.run_id = r.run_id AND k.model IS NULL)
           AS n_skipped_series,
       (SELECT count(*) FROM run_steps st WHERE st.run_id = r.run_id AND st.status IN ('failed', 'abandoned'))
           AS n_failed_steps,
       (SELECT count(*) FROM run_data_issues d WHERE d.run_id = r.run_id) AS n_data_issues,
       coalesce(r.config->'prediction'->'levels', '[80, 95]'::jsonb) AS interval_levels,
       coalesce(r.config->'backtest'->>'champion_metric', 'mase') AS champion_metric,
       r.data_as_of, r.error
FROM pipeline_runs r;

COMMENT ON COLUMN v_runs.data_as_of IS 'when the run pinned the data versions every step of it reads';
COMMENT ON COLUMN v_runs.seconds IS 'wall time of the run, in seconds';
COMMENT ON COLUMN v_runs.interval_levels IS 'interval levels the run was configured with, in percent';
