-- Backtest metrics of successful (or partial) runs per model, series and forecast step. Step NULL = over all
-- steps: for one series the mean over its steps (the store keeps per-series metrics per step only; champions are
-- chosen on that mean), for series NULL the run's stored aggregate over series. Leaderboards read this.
-- coverage_n is the number of backtest errors the coverage_<level> figures of the row rest on: a count, so summed
-- over steps, not averaged.
CREATE VIEW v_backtest_metrics AS
WITH ok AS (
    SELECT m.run_id, r.config_name AS pipeline, r.finished_at AS run_finished_at, m.mode, m.model, m.series_id,
           m.step, m.metric, m.value
    FROM backtest_metrics m
    JOIN pipeline_runs r USING (run_id)
    WHERE r.status IN ('succeeded', 'partial')
), with_series_means AS (
    SELECT run_id, pipeline, run_finished_at, mode, model, series_id, step, metric, value
    FROM ok
    WHERE series_id IS NULL OR step IS NOT NULL
    UNION ALL
    SELECT run_id, pipeline, run_finished_at, mode, model, series_id, NULL, metric,
           CASE WHEN metric = 'coverage_n' THEN sum(value) ELSE avg(value) END
    FROM ok
    WHERE series_id IS NOT NULL AND step IS NOT NULL
    GROUP BY run_id, pipeline, run_finished_at, mode, model, series_id, metric
)
SELECT b.run_id, b.pipeline, b.run_finished_at, b.mode, b.model, s.name AS series_name, s.source, b.step, b.metric,
       b.value
FROM with_series_means b
LEFT JOIN series s ON s.series_id = b.series_id;

COMMENT ON COLUMN v_backtest_metrics.value IS
    'smape and mape in percent, coverage_<level> a fraction (0..1), coverage_n the number of backtest errors it rests on, mase unitless, mae/rmse/bias in the target''s unit';
