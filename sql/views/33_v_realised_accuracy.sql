-- The accuracy users actually got: archived forecasts of published runs scored against actuals that have arrived
-- since.
CREATE VIEW v_realised_accuracy AS
SELECT f.run_id, m.name AS model, o.series_name, count(*) AS n_points,
       avg(abs(o.value - f.yhat)) AS mae,
       avg(200 * abs(o.value - f.yhat) / nullif(abs(o.value) + abs(f.yhat), 0)) AS smape,
       avg(f.yhat - o.value) AS bias,
       min(f.created_at) AS forecast_made_at
FROM forecasts f
JOIN pipeline_runs r ON r.run_id = f.run_id AND r.status IN ('succeeded', 'partial')
JOIN model_versions mv USING (model_version_id)
JOIN models m USING (model_id)
JOIN stg_observations_current o ON o.series_id = f.series_id AND o.ts = f.ts
GROUP BY f.run_id, m.name, o.series_name;

COMMENT ON COLUMN v_realised_accuracy.smape IS 'symmetric MAPE, in percent';
COMMENT ON COLUMN v_realised_accuracy.mae IS 'mean absolute error, in the target''s unit';
