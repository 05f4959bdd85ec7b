-- Backtest accuracy per run, mode, model and series (series NULL = all series), over time.
CREATE VIEW v_backtest_accuracy AS
SELECT r.run_id, r.config_name, r.finished_at AS run_finished_at, m.mode, m.model,
       s.name AS series_name, m.metric, m.value
FROM backtest_metrics m
JOIN pipeline_runs r USING (run_id)
LEFT JOIN series s ON s.series_id = m.series_id
WHERE m.step IS NULL AND r.status IN ('succeeded', 'partial');

COMMENT ON COLUMN v_backtest_accuracy.value IS
    'smape and mape in percent, coverage_<level> a fraction (0..1), coverage_n the number of backtest errors it rests on, mase unitless, mae/rmse/bias in the target''s unit';
