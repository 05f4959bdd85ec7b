-- Every trial of 'forecasting tune', ranked within its run and model (1 = best), and whether it is the trial whose
-- parameters the pipeline now uses.
CREATE VIEW v_tuning_trials AS
SELECT t.run_id, r.config_name AS pipeline, t.model, t.trial,
       rank() OVER (PARTITION BY t.run_id, t.model ORDER BY t.score ASC NULLS LAST, t.trial) AS rank,
       t.metric, t.score, t.params, t.target_lags, t.metrics, t.cutoffs, t.n_forecasts, t.seconds, t.error,
       (p.run_id IS NOT NULL) AS chosen, t.created_at
FROM tuning_trials t
JOIN pipeline_runs r ON r.run_id = t.run_id
LEFT JOIN tuned_parameters p
       ON p.config_name = r.config_name AND p.model = t.model AND p.run_id = t.run_id AND p.trial = t.trial;

COMMENT ON COLUMN v_tuning_trials.score IS 'the ranking metric pooled over series and steps of the backtest windows';
