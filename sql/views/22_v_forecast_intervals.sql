-- Every interval of every forecast of a published (succeeded or partial) run, one row per level: any configured level
-- can be shown.
CREATE VIEW v_forecast_intervals AS
SELECT i.run_id, r.config_name AS pipeline, s.name AS series_name, s.source, m.name AS model, i.model_version_id,
       i.ts, f.step, i.level, i.lo AS lower, i.hi AS upper
FROM forecast_intervals i
JOIN forecasts f USING (run_id, model_version_id, series_id, ts)
JOIN pipeline_runs r ON r.run_id = i.run_id
JOIN series s ON s.series_id = i.series_id
JOIN model_versions mv ON mv.model_version_id = i.model_version_id
JOIN models m ON m.model_id = mv.model_id
WHERE r.status IN ('succeeded', 'partial');

COMMENT ON COLUMN v_forecast_intervals.level IS 'nominal coverage of the interval, in percent';
COMMENT ON COLUMN v_forecast_intervals.lower IS 'lower bound, in the target''s unit';
COMMENT ON COLUMN v_forecast_intervals.upper IS 'upper bound, in the target''s unit';
