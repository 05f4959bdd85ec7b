-- The champion forecast of every series: the model chosen by the newest successful backtest, with that
-- model's newest forecasts from a successful (or partial) run. Backtest, training and prediction may be separate
-- runs (as in the Airflow DAGs), so the champion is matched by model name, not by the run that chose it.
-- lo_80 .. hi_95 are kept for existing readers; v_forecast_intervals has every configured level as rows.
CREATE VIEW champion_forecasts AS
WITH champion AS (
    SELECT DISTINCT ON (c.series_id) c.series_id, c.model
    FROM champions c
    JOIN pipeline_runs r USING (run_id)
    WHERE r.status IN ('succeeded', 'partial')
    ORDER BY c.series_id, c.run_id DESC
), latest AS (
    SELECT DISTINCT ON (ch.series_id) ch.series_id, ch.model, f.run_id, f.model_version_id
    FROM champion ch
    JOIN models m ON m.name = ch.model
    JOIN model_versions mv ON mv.model_id = m.model_id
    JOIN forecasts f ON f.model_version_id = mv.model_version_id AND f.series_id = ch.series_id
    JOIN pipeline_runs r ON r.run_id = f.run_id AND r.status IN ('succeeded', 'partial')
    ORDER BY ch.series_id, f.run_id DESC
)
SELECT s.name AS series_name, s.source, l.model, f.run_id, f.model_version_id, f.ts, f.step, f.yhat,
       i80.lo AS lo_80, i80.hi AS hi_80, i95.lo AS lo_95, i95.hi AS hi_95,
       f.last_ts, f.last_value, f.yhat - f.last_value AS delta, f.series_version_id
FROM latest l
JOIN forecasts f ON f.run_id = l.run_id AND f.model_version_id = l.model_version_id AND f.series_id = l.series_id
JOIN series s ON s.series_id = f.series_id
LEFT JOIN forecast_intervals i80
       ON (i80.run_id, i80.model_version_id, i80.series_id, i80.ts, i80.level) = (f.run_id, f.model_version_id, f.series_id, f.ts, 80)
LEFT JOIN forecast_intervals i95
       ON (i95.run_id, i95.model_version_id, i95.series_id, i95.ts, i95.level) = (f.run_id, f.model_version_id, f.series_id, f.ts, 95);

COMMENT ON COLUMN champion_forecasts.yhat IS 'point forecast, in the target''s unit';
