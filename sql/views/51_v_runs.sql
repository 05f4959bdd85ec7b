-- Every model run with what it produced and what it could not do.
CREATE VIEW v_runs AS
SELECT r.run_id, r.config_name AS pipeline, r.command, r.triggered_by, r.status, r.started_at, r.finished_at,
       extract(epoch FROM r.finished_at - r.started_at)::double precision AS seconds,
       (SELECT count(DISTINCT f.series_id) FROM forecasts f WHERE f.run_id = r.run_id) AS n_forecast_series,
       (SELECT count(DISTINCT k.series_id) FROM series_skips k WHERE k.run_id = r.run_id AND k.model IS NULL)
           AS n_skipped_series,
       (SELECT count(*) FROM run_steps st WHERE st.run_id = r.run_id AND st.status = 'failed') AS n_failed_steps,
       coalesce(r.config->'prediction'->'levels', '[80, 95]'::jsonb) AS interval_levels,
       coalesce(r.config->'backtest'->>'champion_metric', 'mase') AS champion_metric,
       r.error
FROM pipeline_runs r;

COMMENT ON COLUMN v_runs.seconds IS 'wall time of the run, in seconds';
COMMENT ON COLUMN v_runs.interval_levels IS 'interval levels the run was configured with, in percent';
