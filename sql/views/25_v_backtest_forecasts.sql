-- Every backtest point forecast next to its actual and the series' (current) value at the window's origin.
CREATE VIEW v_backtest_forecasts AS
SELECT b.run_id, r.config_name AS pipeline, b.mode, b.model, s.name AS series_name, s.source, b.window_no, b.cutoff,
       o.value AS origin_value, b.ts, b.step, b.y, b.yhat
FROM backtest_forecasts b
JOIN pipeline_runs r ON r.run_id = b.run_id
JOIN series s ON s.series_id = b.series_id
LEFT JOIN stg_observations_current o ON o.series_id = b.series_id AND o.ts = b.cutoff
WHERE r.status IN ('succeeded', 'partial');

COMMENT ON COLUMN v_backtest_forecasts.origin_value IS 'current value at the origin (cutoff), in the target''s unit';
