-- Backtest metrics of successful (or partial) runs per model, series and forecast step: step NULL = all steps,
-- series NULL = all series. Leaderboards and per-step accuracy read this.
CREATE VIEW v_backtest_metrics AS
SELECT m.run_id, r.config_name AS pipeline, r.finished_at AS run_finished_at, m.mode, m.model,
       s.name AS series_name, s.source, m.step, m.metric, m.value
FROM backtest_metrics m
JOIN pipeline_runs r USING (run_id)
LEFT JOIN series s ON s.series_id = m.series_id
WHERE r.status IN ('succeeded', 'partial');

COMMENT ON COLUMN v_backtest_metrics.value IS
    'smape and mape in percent, coverage_<level> a fraction (0..1), mase unitless, mae/rmse/bias in the target''s unit';
