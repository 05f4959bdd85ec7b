-- Top SHAP contributions of every explained forecast (tree models) of a published run, by rank.
CREATE VIEW v_forecast_explanations AS
SELECT e.run_id, s.name AS series_name, s.source, m.name AS model, e.model_version_id, e.ts, f.step, e.rank,
       e.feature, e.feature_value, e.shap_value, e.base_value
FROM forecast_explanations e
JOIN forecasts f USING (run_id, model_version_id, series_id, ts)
JOIN pipeline_runs r ON r.run_id = e.run_id AND r.status IN ('succeeded', 'partial')
JOIN series s ON s.series_id = e.series_id
JOIN model_versions mv ON mv.model_version_id = e.model_version_id
JOIN models m ON m.model_id = mv.model_id;

COMMENT ON COLUMN v_forecast_explanations.shap_value IS 'contribution to yhat, in the target''s unit';
